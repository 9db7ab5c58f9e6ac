"""Quiet Lightning: its loggers at WARNING, and the warnings geossl's runs expect silenced (train and pretrain)."""

from __future__ import annotations

import logging
import warnings

log = logging.getLogger("geossl")


def quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported; keep them at WARNING unless geossl logs debug.

    Also silences warnings that do not apply to geossl's runs (each with its reason below).
    """
    level = logging.DEBUG if log.getEffectiveLevel() <= logging.DEBUG else logging.WARNING
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # our loaders draw each step's batch from the global step (geossl.data.module): resuming mid-epoch is exact
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")  # --resume
    # an EMA teacher (geossl.ssl.teacher) stays in eval mode by design
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")
