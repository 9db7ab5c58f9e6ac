"""Refinements of pseudo-labels, one per module; a new refinement is one new module and one line here."""

from __future__ import annotations

from geossl.ssl.refine.base import RefineConfig, Refinement
from geossl.ssl.refine.segments import Segments

REFINEMENTS: dict[str, type[Refinement]] = {"segments": Segments}

__all__ = ["REFINEMENTS", "RefineConfig", "Refinement"]
