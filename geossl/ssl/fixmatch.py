"""``fixmatch``: confident weak-view pseudo-labels supervise one strong view.

``p_w = softmax(f(x_w))`` without gradient, ``ŷ = argmax p_w``, ``q = max p_w``;
``L_u = Σ CE(f(x_s1), ŷ)·1[q ≥ τ] / N_valid``; ``L = L_s + L_u``. The strong view carries CutMix, and ``ŷ``,
``q`` and the valid mask are pasted with the same box.
"""

from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field

from geossl.config import StrictModel
from geossl.ssl.base import Batch, PseudoLabels, StepOutput, Strategy, no_unlabeled, split
from geossl.ssl.losses import weighted_ce


class FixMatchConfig(StrictModel):
    """Confidence threshold τ."""

    threshold: Annotated[float, Field(ge=0, le=1)] = 0.95


class FixMatch(Strategy):
    """FixMatch for segmentation."""

    name = "fixmatch"
    Config = FixMatchConfig
    config: FixMatchConfig

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``L_s + L_u``."""
        if batch_u is None:
            raise no_unlabeled(self.name)
        x_w, valid = batch_u["image"], batch_u["valid"]
        with torch.no_grad():
            _, conf, labels = self.pseudo_labels(self.model(x_w))
        strong = self.strong_view(x_w, valid, rng)
        n_l = batch_l["image"].shape[0]
        logits_l, logits_s = split(self.model(torch.cat([batch_l["image"], strong.image])), n_l)
        loss_s = self.supervised_loss(logits_l, batch_l["mask"])
        v = strong.mix(valid)
        used = (strong.mix(conf) >= self.config.threshold) & v
        loss_u = weighted_ce(logits_s, strong.mix(labels), used.float(), v.sum())
        pseudo = PseudoLabels(labels=labels, weight=((conf >= self.config.threshold) & valid).float(), valid=valid)
        return StepOutput(loss=loss_s + loss_u, terms={"loss_s": loss_s.detach(), "loss_u": loss_u.detach()},
                          pseudo=pseudo)
