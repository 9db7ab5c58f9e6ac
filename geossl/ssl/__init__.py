"""Semi-supervised strategies, one per module; a new strategy is one new module and one line here."""

from __future__ import annotations

from geossl.ssl.base import PseudoLabels, StepOutput, Strategy
from geossl.ssl.crossview import CrossView
from geossl.ssl.dwl import Dwl
from geossl.ssl.fixmatch import FixMatch
from geossl.ssl.prototype import Prototype
from geossl.ssl.supervised import Supervised
from geossl.ssl.unimatch import UniMatch

STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (Supervised, FixMatch, UniMatch, CrossView, Dwl, Prototype)}

__all__ = ["STRATEGIES", "PseudoLabels", "StepOutput", "Strategy"]
