"""The confidence gate of the thresholding strategies (fixmatch, unimatch, prototype, crossview): fixed or per class.

A pixel's pseudo-label ``ŷ`` teaches when its confidence ``q`` reaches the threshold of its class, ``τ_c``:

- fixed (``adaptive_threshold: false``): ``τ_c = τ`` for every class (FixMatch, UniMatch);
- class-adaptive (``adaptive_threshold: true``): ``τ_c = min(τ, ema_c)``, ``ema_c`` the running mean of the
  teacher's confidence over the pixels it labels ``c`` (FlexMatch/FreeMatch-style, as in CrossMatch's code). A
  class the teacher is rarely sure of (the roofs a weak model half-sees) then teaches at its own level of
  confidence instead of only where it is as sure as of the majority class.
"""

from __future__ import annotations

from typing import Annotated, Any

import torch
from pydantic import Field
from torch import Tensor

from geossl.models import Segmenter
from geossl.ssl.base import StrategyConfig
from geossl.ssl.losses import class_thresholds, update_confidence_ema
from geossl.ssl.pseudo import PseudoLabelConfig, PseudoLabelStrategy

#: The checkpoint key of the class-confidence EMA.
EMA_KEY = "confidence_ema"


class ThresholdConfig(PseudoLabelConfig):
    """The confidence gate: ``threshold`` τ, class-adaptive or not, and the EMA momentum of the adaptive one."""

    threshold: Annotated[float, Field(ge=0, le=1)] = 0.95
    adaptive_threshold: bool = False
    threshold_momentum: Annotated[float, Field(ge=0, lt=1)] = 0.99


class ClassThresholds:
    """Per-class thresholds ``τ_c`` (module docstring); the EMA starts at τ for every class."""

    def __init__(self, num_classes: int, config: ThresholdConfig) -> None:
        self.tau, self.adaptive, self.momentum = config.threshold, config.adaptive_threshold, config.threshold_momentum
        self.ema = torch.full((num_classes,), self.tau)

    def update(self, conf: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
        """Fold this batch's confidences into the EMA (when adaptive); return ``τ_c`` ``(K,)`` on ``conf``'s device."""
        if not self.adaptive:
            return torch.full_like(self.ema, self.tau).to(conf.device)
        self.ema = update_confidence_ema(self.ema.to(conf.device), conf, labels, valid, self.momentum)
        return class_thresholds(self.ema, self.tau)

    def gate(self, conf: Tensor, labels: Tensor, valid: Tensor) -> Tensor:
        """:meth:`update`, then the mask of the valid pixels whose confidence reaches their class's threshold."""
        tau = self.update(conf, labels, valid)
        return (conf >= tau[labels]) & valid


class ThresholdStrategy(PseudoLabelStrategy):
    """A pseudo-labelling strategy gated by :class:`ClassThresholds`, whose EMA it checkpoints."""

    config: ThresholdConfig

    def __init__(self, model: Segmenter, config: StrategyConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, config, *args, **kwargs)
        self.thresholds = ClassThresholds(model.config.num_classes, self.config)

    def state_dict(self) -> dict[str, Any]:
        """The class-confidence EMA (the adaptive thresholds)."""
        return {EMA_KEY: self.thresholds.ema.detach().cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the class-confidence EMA."""
        if EMA_KEY in state:
            self.thresholds.ema = state[EMA_KEY].clone()
