"""``geossl pretrain``: self-supervised pretraining of the segmentation encoder on a catalog's imagery.

Output folder::

    encoder.pt         the encoder's weights and what they fit (geossl.models.weights): `geossl train --weights`
    config.yaml        the effective PretrainConfig
    logs/metrics.csv   training loss (and the features' spread, ``train_ssl_std``, for moco and simclr)
    logs/hparams.yaml  the torchgeo task's hyperparameters

Every input is checked before anything is written; the outputs appear together when the run has finished.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path

import timm
import torch
import yaml

from geossl.errors import InputError
from geossl.io.atomic import publish, staging_dir, write_text_atomic
from geossl.models.weights import EncoderMeta, save_encoder_weights
from geossl.pretrain.config import PretrainConfig
from geossl.pretrain.data import window_loader
from geossl.pretrain.export import build_encoder, encoder_state
from geossl.pretrain.tasks import build_task, trained_backbone
from geossl.quiet import quiet_lightning
from geossl.train.inputs import ensure_catalog

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"
#: torchgeo's tasks change some values per epoch (MoCo v3's momentum); a run is cut into this many epochs.
SCHEDULE_EPOCHS = 100
#: Log the loss every this many steps.
LOG_EVERY = 10


def check_out(out: Path) -> None:
    """``out`` must be a folder that can be written and holds no pretrained encoder yet."""
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out must be a folder, and this is a file")
    if (out / ENCODER_FILE).exists():
        raise InputError(out, f"already holds {ENCODER_FILE}; choose another --out")
    existing = next(p for p in [out.absolute(), *out.absolute().parents] if p.exists())
    if not existing.is_dir():
        raise InputError(out, f"cannot be created ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(out, f"cannot be written ({existing} is not writable)")


def check_encoder(config: PretrainConfig, bands: int) -> None:
    """The encoder exists in timm and in smp, and the pretrained tensors map onto the segmentation encoder."""
    if not timm.is_model(config.timm_name):
        raise InputError("--encoder", f"unknown timm model '{config.timm_name}' (from {config.encoder})")
    backbone = timm.create_model(config.timm_name, in_chans=bands, num_classes=0)
    encoder_state(backbone, build_encoder(config.encoder, bands), config.encoder)


def pretrain(manifest_path: Path, catalog_dir: Path, out: Path, config: PretrainConfig,
             data_root: Path | None = None, quiet: bool = False) -> Path:
    """Pretrain; return the path of the weights file (``out/encoder.pt``).

    When ``catalog_dir`` holds no catalog yet, the manifest is ingested there first (its paths resolved under
    ``data_root``), as ``geossl train`` does; ``out`` is checked before that.
    """
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import CSVLogger

    quiet_lightning()
    warnings.filterwarnings("ignore", message=r".*`validation_step` but have no `val_dataloader`.*")
    check_out(out)
    _, catalog, root = ensure_catalog(manifest_path, catalog_dir, data_root, quiet)
    bands = len(catalog.bands)
    check_encoder(config, bands)
    steps_per_epoch = math.ceil(config.max_steps / SCHEDULE_EPOCHS)
    loader = window_loader(catalog, root, config.patch_size, config.batch_size, steps_per_epoch, config.seed,
                           config.workers)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    task = build_task(config, bands)
    with staging_dir(out) as stage:
        trainer = pl.Trainer(accelerator=config.accelerator, devices=1, max_steps=config.max_steps,
                             max_epochs=math.ceil(config.max_steps / steps_per_epoch),
                             logger=CSVLogger(stage, name="logs", version=""), enable_checkpointing=False,
                             enable_progress_bar=not quiet, enable_model_summary=False,
                             log_every_n_steps=min(LOG_EVERY, steps_per_epoch), default_root_dir=stage)
        trainer.fit(task, train_dataloaders=loader)
        state = encoder_state(trained_backbone(task).cpu(), build_encoder(config.encoder, bands), config.encoder)
        meta = EncoderMeta(encoder=config.encoder, in_channels=bands, bands=list(catalog.bands),
                           method=config.method, steps=trainer.global_step, patch_size=config.patch_size)
        save_encoder_weights(stage / ENCODER_FILE, meta, state)
        write_text_atomic(stage / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        files = [str(p.relative_to(stage)) for p in sorted(stage.rglob("*")) if p.is_file()]
        publish(stage, out, files, last=ENCODER_FILE)
    log.info("pretrained %s with %s for %d steps: %s", config.encoder, config.method, meta.steps, out / ENCODER_FILE)
    return out / ENCODER_FILE
