"""``unimatch`` (Yang et al., CVPR 2023; the loop of the official ``unimatch.py``).

One forward on ``cat(x_l, x_w)`` gives the labeled prediction, the weak prediction (pseudo-labels ``ŷ``,
confidences ``q``, detached) and the feature-perturbed weak prediction (Dropout2d on the encoder features);
one forward on ``cat(x_s1, x_s2)`` gives the two strong predictions. With ``τ`` the threshold and ``N`` the
valid pixels (all of them, not only the confident ones)::

    L_s1, L_s2 = Σ CE(f(x_si), ŷ_mixed_i)·1[q_mixed_i ≥ τ] / N
    L_fp       = Σ CE(f_fp(x_w), ŷ)·1[q ≥ τ] / N
    L          = (L_s + 0.25·L_s1 + 0.25·L_s2 + 0.5·L_fp) / 2

Choice: the CutMix source of each image is another image of the same unlabeled batch, whose pseudo-labels come
from the same (train-mode) weak forward; the official code predicts a separate mixing batch in eval mode, one
more forward per step. The feature-perturbed stream is made for the unlabeled half only (the labeled half's is
never used), and decoded in the same decoder pass as the clean features. Teacher and refinement: see
:mod:`geossl.ssl.pseudo` (the weights ``1[q ≥ τ]`` are refined with the labels).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from geossl.ssl.base import Batch, PseudoLabels, StepOutput, no_unlabeled, split
from geossl.ssl.losses import weighted_ce
from geossl.ssl.thresholds import ThresholdConfig, ThresholdStrategy


class UniMatchConfig(ThresholdConfig):
    """Threshold (fixed or class-adaptive), feature dropout rate and loss weights (defaults of the paper)."""

    name: Literal["unimatch"] = "unimatch"
    feature_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.5
    weight_strong: Annotated[float, Field(ge=0)] = 0.25
    weight_fp: Annotated[float, Field(ge=0)] = 0.5


class UniMatch(ThresholdStrategy):
    """UniMatch: image-level (two strong views) and feature-level (dropout) perturbation."""

    Config = UniMatchConfig
    config: UniMatchConfig

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``(L_s + 0.25·L_s1 + 0.25·L_s2 + 0.5·L_fp) / 2``."""
        if batch_u is None:
            raise no_unlabeled(self.name)
        cfg, model = self.config, self.model
        x_w, valid = batch_u["image"], batch_u["valid"]
        n_l = batch_l["image"].shape[0]
        logits, (logits_fp,) = self.decode_with_dropout(model.features(torch.cat([batch_l["image"], x_w])), n_l,
                                                         (cfg.feature_dropout,), rng)
        logits_l, logits_w = split(logits, n_l)
        probs, conf, labels = self.teach(x_w, logits_w)
        labels, weight = self.refine(x_w, probs, labels, conf, valid, self.thresholds.gate(conf, labels, valid))
        s1, s2 = self.strong_view(x_w, valid, rng), self.strong_view(x_w, valid, rng)
        logits_s1, logits_s2 = split(model(torch.cat([s1.image, s2.image])), x_w.shape[0])

        loss_s = self.supervised_loss(logits_l, batch_l["mask"])
        loss_u = [weighted_ce(logits, view.mix(labels), view.mix(weight), view.mix(valid).sum())
                  for view, logits in ((s1, logits_s1), (s2, logits_s2))]
        loss_fp = weighted_ce(logits_fp, labels, weight, valid.sum())
        loss = (loss_s + cfg.weight_strong * (loss_u[0] + loss_u[1]) + cfg.weight_fp * loss_fp) / 2
        terms = {"loss_s": loss_s, "loss_s1": loss_u[0], "loss_s2": loss_u[1], "loss_fp": loss_fp}
        return StepOutput(loss=loss, terms={k: v.detach() for k, v in terms.items()},
                          pseudo=PseudoLabels(labels=labels, weight=weight, valid=valid))
