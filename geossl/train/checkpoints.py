"""The checkpoint of a run's final step when ``max_steps`` ends it in the middle of an epoch.

``ModelCheckpoint`` writes ``last.ckpt`` at the end of each epoch (after its validation). A run whose last step
is not the end of an epoch, even one shorter than its first epoch, gets its ``last.ckpt`` from
:class:`FinalStepCheckpoint`, written inside the training loop right after that step, as Lightning's own
``every_n_train_steps`` checkpoints are: a mid-epoch checkpoint ``--resume`` continues from that very step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class FinalStepCheckpoint(Callback):
    """Saves the trainer's state to ``path`` after the step that reaches ``max_steps``, unless it ends an epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Save when this batch's step was the run's last and more batches of the epoch remain."""
        if trainer.global_step >= trainer.max_steps and batch_idx + 1 < trainer.num_training_batches:
            trainer.save_checkpoint(self.path)
