"""Semi-supervised strategies and what they are made of.

- A new strategy is one new module here and one line: its class added to :data:`STRATEGIES`. The module holds a
  :class:`Strategy` subclass and its options, a :class:`StrategyConfig` subclass whose ``name`` field
  (``Literal["NAME"] = "NAME"``) names it; the options declare the data the strategy needs
  (:meth:`StrategyConfig.data_spec`). ``strategy: NAME`` or ``strategy: {name: NAME, option: value}`` in a
  training config (``--strategy NAME --strategy-option option=value`` on the command line) then chooses it.
  Pseudo-labelling strategies derive from :class:`PseudoLabelStrategy`: they get the ``teacher`` (student or
  EMA) and ``refine`` options and call :meth:`~PseudoLabelStrategy.teach` and
  :meth:`~PseudoLabelStrategy.refine`. Modules the strategy trains or keeps go into
  :attr:`Strategy.owned` (checkpointed, never exported).
- A new pseudo-label refinement is one new module in :mod:`geossl.ssl.refine` and one line there: its class
  added to :data:`~geossl.ssl.refine.REFINEMENTS`.
"""

from __future__ import annotations

from geossl.ssl.base import PseudoLabels, StepOutput, Strategy, StrategyConfig
from geossl.ssl.crossview import CrossView
from geossl.ssl.dwl import Dwl
from geossl.ssl.fixmatch import FixMatch
from geossl.ssl.prototype import Prototype
from geossl.ssl.pseudo import PseudoLabelConfig, PseudoLabelStrategy
from geossl.ssl.registry import registry, tagged_union
from geossl.ssl.supervised import Supervised, SupervisedConfig
from geossl.ssl.unimatch import UniMatch

STRATEGIES: dict[str, type[Strategy]] = registry(Supervised, FixMatch, UniMatch, CrossView, Dwl, Prototype)

#: The ``strategy`` option of a training config: one strategy's options, chosen by ``name``.
StrategyChoice = tagged_union(STRATEGIES, "strategy")

__all__ = ["STRATEGIES", "PseudoLabelConfig", "PseudoLabelStrategy", "PseudoLabels", "StepOutput", "Strategy",
           "StrategyChoice", "StrategyConfig", "SupervisedConfig"]
