"""Refinements of the pseudo-labels, one per module; a new refinement is one new module and one line here."""

from __future__ import annotations

from geossl.ssl.refine.base import Refinement
from geossl.ssl.refine.segments import Segments

REFINEMENTS: dict[str, type[Refinement]] = {r.name: r for r in (Segments,)}

__all__ = ["REFINEMENTS", "Refinement"]
