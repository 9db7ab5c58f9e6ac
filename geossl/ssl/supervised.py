"""``supervised``: ``L = CE(f(x_l), y_l)`` on the labeled pixels; the baseline of every other strategy."""

from __future__ import annotations

import torch

from geossl.config import StrictModel
from geossl.ssl.base import Batch, StepOutput, Strategy


class SupervisedConfig(StrictModel):
    """No parameters."""


class Supervised(Strategy):
    """Cross-entropy on the labeled batch only."""

    name = "supervised"
    Config = SupervisedConfig
    uses_unlabeled = False

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``CE(f(x_l), y_l)``."""
        loss = self.supervised_loss(self.model(batch_l["image"]), batch_l["mask"])
        return StepOutput(loss=loss, terms={"loss_s": loss.detach()})
