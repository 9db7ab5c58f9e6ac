"""``supervised``: ``L = CE(f(x_l), y_l)`` on the labeled pixels; the baseline of every other strategy."""

from __future__ import annotations

from typing import Literal

import torch

from geossl.data.spec import DataSpec
from geossl.ssl.base import Batch, StepOutput, Strategy, StrategyConfig


class SupervisedConfig(StrategyConfig):
    """No parameters."""

    name: Literal["supervised"] = "supervised"

    def data_spec(self) -> DataSpec:
        """Labeled windows only."""
        return DataSpec(unlabeled=False)


class Supervised(Strategy):
    """Cross-entropy on the labeled batch only."""

    Config = SupervisedConfig

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``CE(f(x_l), y_l)``."""
        loss = self.supervised_loss(self.model(batch_l["image"]), batch_l["mask"])
        return StepOutput(loss=loss, terms={"loss_s": loss.detach()})
