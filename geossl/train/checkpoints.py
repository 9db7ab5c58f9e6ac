"""How checkpoints are written: whole or not at all, and after the final step of a run that ends mid-epoch.

``ModelCheckpoint`` writes ``last.ckpt`` at the end of each epoch (after its validation). A run whose last step
is not the end of an epoch, even one shorter than its first epoch, gets its ``last.ckpt`` from
:class:`FinalStepCheckpoint`, written inside the training loop right after that step, as Lightning's own
``every_n_train_steps`` checkpoints are: a mid-epoch checkpoint ``--resume`` continues from that very step.

:class:`AtomicCheckpointIO` writes every checkpoint under a temporary name beside its final one and renames it,
so a run killed while saving keeps its previous ``last.ckpt`` (Lightning stages the file in the system's temp
folder and moves it, a plain copy onto the final name when that folder is on another file system).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from geossl.io.atomic import atomic_file


class FinalStepCheckpoint(Callback):
    """Saves the trainer's state to ``path`` after the step that reaches ``max_steps``, unless it ends an epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        """Save when this batch's step was the run's last and more batches of the epoch remain."""
        if trainer.global_step >= trainer.max_steps and batch_idx + 1 < trainer.num_training_batches:
            trainer.save_checkpoint(self.path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary name in the checkpoint's folder, then an atomic rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` whole or not at all (``storage_options`` are not supported)."""
        if storage_options is not None:
            raise TypeError(f"storage_options are not supported by {type(self).__name__}")
        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(final) as tmp:
            torch.save(checkpoint, tmp)
