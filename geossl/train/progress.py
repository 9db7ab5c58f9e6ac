"""Training's progress as ``geossl --progress`` lines (:mod:`geossl.progress`): the steps done of the run's."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from geossl.progress import report


class StepProgress(Callback):
    """Reports ``global_step / max_steps`` after every training step."""

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Report the share of the run's steps done."""
        report(trainer.global_step / max(trainer.max_steps, 1), "training")
