"""Refinements of pseudo-labels (the ``refine:`` option of the pseudo-labelling strategies).

A new refinement is one new module here (a :class:`Refinement` subclass with its ``Config``, whose ``name`` is
the option's value) and one line: its class added to :data:`REFINEMENTS`. The ``refine`` option of every
pseudo-labelling strategy then accepts it, ``refine: NAME`` or ``refine: {name: NAME, option: value}``.
"""

from __future__ import annotations

from geossl.ssl.refine.base import RefineConfig, Refinement
from geossl.ssl.refine.none import NoRefineConfig, NoRefinement
from geossl.ssl.refine.segments import Segments
from geossl.ssl.registry import registry, tagged_union

REFINEMENTS: dict[str, type[Refinement]] = registry(NoRefinement, Segments)

#: The ``refine`` option: one refinement's options, chosen by ``name``.
RefineChoice = tagged_union(REFINEMENTS, "refinement")

__all__ = ["REFINEMENTS", "NoRefineConfig", "RefineChoice", "RefineConfig", "Refinement"]
