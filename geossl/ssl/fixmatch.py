"""``fixmatch``: confident weak-view pseudo-labels supervise one strong view.

``p_w = softmax(f(x_w))`` without gradient, ``ŷ = argmax p_w``, ``q = max p_w``;
``L_u = Σ CE(f(x_s1), ŷ)·1[q ≥ τ_c(ŷ)] / N_valid`` with ``τ_c = τ`` (or class-adaptive,
:mod:`geossl.ssl.thresholds`); ``L = L_s + L_u``. The strong view carries CutMix, and ``ŷ``, the weights and
the valid mask are pasted with the same box. Teacher and refinement: see
:mod:`geossl.ssl.pseudo`.
"""

from __future__ import annotations

from typing import Literal

import torch

from geossl.ssl.base import Batch, PseudoLabels, StepOutput, no_unlabeled, split
from geossl.ssl.losses import weighted_ce
from geossl.ssl.thresholds import ThresholdConfig, ThresholdStrategy


class FixMatchConfig(ThresholdConfig):
    """Confidence threshold τ, fixed or class-adaptive (:mod:`geossl.ssl.thresholds`)."""

    name: Literal["fixmatch"] = "fixmatch"


class FixMatch(ThresholdStrategy):
    """FixMatch for segmentation."""

    Config = FixMatchConfig
    config: FixMatchConfig

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``L_s + L_u``."""
        if batch_u is None:
            raise no_unlabeled(self.name)
        x_w, valid = batch_u["image"], batch_u["valid"]
        probs, conf, labels = self.teach(x_w)
        labels, weight = self.refine(x_w, probs, labels, conf, valid, self.thresholds.gate(conf, labels, valid))
        strong = self.strong_view(x_w, valid, rng)
        n_l = batch_l["image"].shape[0]
        logits_l, logits_s = split(self.model(torch.cat([batch_l["image"], strong.image])), n_l)
        loss_s = self.supervised_loss(logits_l, batch_l["mask"])
        loss_u = weighted_ce(logits_s, strong.mix(labels), strong.mix(weight), strong.mix(valid).sum())
        return StepOutput(loss=loss_s + loss_u, terms={"loss_s": loss_s.detach(), "loss_u": loss_u.detach()},
                          pseudo=PseudoLabels(labels=labels, weight=weight, valid=valid))
