"""``geossl train``: manifest + catalog + config → checkpoints, logs and a model bundle.

Output folder::

    config.yaml              the effective training config
    checkpoints/best.ckpt    best validation mIoU (Lightning checkpoint carrying the geossl bundle)
    checkpoints/last.ckpt    the latest epoch, or the final step when max_steps ends a run mid-epoch (what
                             --resume continues)
    logs/metrics.csv         per-step losses, per-epoch validation metrics and pseudo-label diagnostics
    logs/resume-N/           the logs of the N-th --resume
    model.pt                 the best model as a clean bundle (what ``geossl predict`` takes)
    metrics.json             the bundle's validation metrics

Every input is checked before anything is written; bad input raises :class:`InputError`.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from geossl.catalog import Catalog
from geossl.classweights import balanced_weights
from geossl.config import validate_model
from geossl.data.module import SplitPlan, SslDataModule, plan_splits
from geossl.errors import InputError
from geossl.io.atomic import write_text_atomic
from geossl.models import ModelBundle, ModelConfig, Segmenter, described_bands, load_bundle, save_bundle
from geossl.models.config import ModelOptions
from geossl.ssl import STRATEGIES
from geossl.train.config import TrainConfig
from geossl.train.inputs import ensure_catalog

if TYPE_CHECKING:
    from lightning.pytorch.callbacks import Callback

    from geossl.train.task import SegmentationTask

log = logging.getLogger(__name__)


def check_config(config: TrainConfig, catalog: Catalog) -> None:
    """Strategy, encoder (by building the model once) and patch size against the catalog's scenes."""
    if config.strategy not in STRATEGIES:
        raise InputError("--strategy", f"unknown strategy '{config.strategy}' (choose from "
                                       f"{', '.join(STRATEGIES)})")
    strategy = STRATEGIES[config.strategy]
    validate_model(strategy.Config, config.strategy_params, "strategy_params")
    Segmenter(model_config(config, catalog), catalog.bands)
    largest = max(min(s.width, s.height) for s in catalog.scenes)
    if config.patch_size > largest:
        raise InputError("--patch-size", f"{config.patch_size} px is larger than every scene (the largest fits "
                                         f"{largest} px windows)")
    if strategy.uses_unlabeled and config.label_fraction == 1.0:
        raise InputError("--label-fraction", f"1.0 labels every train region: nothing is left unlabeled for "
                                             f"{config.strategy}")


def model_config(config: TrainConfig, catalog: Catalog) -> ModelConfig:
    """The model a config asks for, with the catalog's bands in and classes out."""
    return validate_model(ModelConfig, {
        **config.model_dump(include=set(ModelOptions.model_fields)), "in_channels": len(catalog.bands),
        "num_classes": len(catalog.classes), "pseudo_head": STRATEGIES[config.strategy].needs_pseudo_head,
    }, "model options")


def make_bundle(config: TrainConfig, catalog: Catalog) -> ModelBundle:
    """The self-description of the model being trained."""
    return ModelBundle(classes=catalog.classes, ignore_id=catalog.ignore_id, bands=catalog.bands,
                       source_bands=described_bands(Path(scene.source) for scene in catalog.scenes),
                       mean=[float(s["mean"]) for s in catalog.band_stats],
                       std=[float(s["std"]) for s in catalog.band_stats], nodata=catalog.nodata,
                       patch_size=config.patch_size, overlap=config.prediction_overlap,
                       resolution=list(catalog.resolution), crs=catalog.crs,
                       grid_origin=[catalog.scenes[0].transform[2], catalog.scenes[0].transform[5]],
                       model=model_config(config, catalog).model_copy(update={"weights": "none"}),
                       strategy=config.strategy)


def class_weights(config: TrainConfig, plan: SplitPlan) -> list[float] | None:
    """Class weights of the supervised loss (None: unweighted).

    ``balanced``: :func:`geossl.classweights.balanced_weights` of the labeled split's pixel counts.
    """
    if config.class_weighting == "none":
        return None
    return [float(v) for v in balanced_weights(plan.labeled_counts)]


def _precision(config: TrainConfig) -> str:
    if config.precision != "auto":
        return config.precision
    gpu = config.accelerator in ("gpu", "cuda") or (config.accelerator == "auto" and torch.cuda.is_available())
    if not gpu:
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def train(manifest_path: Path, config: TrainConfig, out: Path, catalog_dir: Path, data_root: Path | None = None,
          resume: bool = False, quiet: bool = False, callbacks: Sequence[Callback] = ()) -> Path:
    """Train; return the path of the exported model bundle (``out/model.pt``).

    ``callbacks`` are extra Lightning callbacks (the run's own checkpoint callbacks are always there).
    """
    import lightning.pytorch as pl

    from geossl.train.task import SegmentationTask

    _quiet_lightning()
    _, catalog, root = ensure_catalog(manifest_path, catalog_dir, data_root, quiet)
    check_config(config, catalog)
    last = out / "checkpoints" / "last.ckpt"
    launched = _launched_by_lightning()
    _check_out(out, last, config, resume, launched)
    plan = plan_splits(catalog, root, config.label_fraction, config.seed, config.label_selection)
    if STRATEGIES[config.strategy].uses_unlabeled and not plan.of("unlabeled"):
        raise InputError(root / "catalog.json", f"no unlabeled region for {config.strategy}")

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    task = SegmentationTask(config.model_dump(mode="json"), make_bundle(config, catalog).model_dump(mode="json"),
                            class_weights(config, plan))
    data = _data_module(config, catalog, root, plan, task)
    has_val = bool(plan.of("val"))
    if not has_val:
        log.warning("the catalog has no validation region: no validation; the exported model is the last step's")

    out.mkdir(parents=True, exist_ok=True)
    if not launched:
        write_text_atomic(out / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    trainer, best_ckpt = _trainer(config, out, last, has_val, resume, quiet, callbacks)
    trainer.fit(task, datamodule=data, ckpt_path=last if resume else None)
    if trainer.is_global_zero:
        _export(out, best_ckpt.best_model_path, last, f"{config.strategy} ({config.encoder}) for "
                                                      f"{trainer.global_step} steps")
    return out / "model.pt"


def _check_out(out: Path, last: Path, config: TrainConfig, resume: bool, launched: bool) -> None:
    """A new run needs a fresh folder; ``--resume`` needs a last checkpoint of the same strategy and model."""
    if resume and not last.is_file():
        raise InputError(out, "--resume given but there is no checkpoints/last.ckpt to resume from")
    if not resume and not launched and (out / "checkpoints").exists():
        raise InputError(out, "already holds a training run; pass --resume to continue it or choose another --out")
    if resume:
        _check_resume(config, out)


def _data_module(config: TrainConfig, catalog: Catalog, root: Path, plan: SplitPlan, task: SegmentationTask
                 ) -> SslDataModule:
    """The training and validation data the strategy of ``task`` asks for (pairs of windows for cross-view)."""
    paired = bool(getattr(task.ssl, "paired", False))
    overlap = tuple(getattr(task.ssl.config, "overlap", (0.25, 0.75)))
    return SslDataModule(catalog, root, plan, config.patch_size, config.batch_size,
                         config.unlabeled_batch_size or config.batch_size, config.steps_per_epoch,
                         STRATEGIES[config.strategy].uses_unlabeled, pairs=paired,
                         overlap=overlap,  # type: ignore[arg-type]
                         seed=config.seed, workers=config.workers, pseudo_truth=config.pseudo_truth)


def _trainer(config: TrainConfig, out: Path, last: Path, has_val: bool, resume: bool, quiet: bool,
             callbacks: Sequence[Callback]) -> tuple[Any, Any]:
    """The Lightning trainer (loggers, devices, precision, step limits) and its best-checkpoint callback."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from geossl.train.checkpoints import AtomicCheckpointIO, FinalStepCheckpoint

    # two callbacks: Lightning 2.6 writes save_last only when the monitored checkpoint was written too
    best_ckpt = ModelCheckpoint(dirpath=last.parent, filename="best", monitor="val_miou", mode="max",
                                save_top_k=1 if has_val else 0, auto_insert_metric_name=False,
                                enable_version_counter=False, save_on_train_epoch_end=False)
    last_ckpt = ModelCheckpoint(dirpath=last.parent, filename=last.stem, monitor=None, save_top_k=1,
                                enable_version_counter=False, save_on_train_epoch_end=not has_val)
    # a resumed run logs beside the first one (Lightning's CSV logger would overwrite logs/metrics.csv)
    version = f"resume-{len(list((out / 'logs').glob('resume-*'))) + 1}" if resume else ""
    loggers: list[Any] = [CSVLogger(out, name="logs", version=version)]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
    devices = config.devices
    trainer = pl.Trainer(
        accelerator=config.accelerator, devices=devices,
        strategy="ddp" if isinstance(devices, int) and devices > 1 else "auto",
        precision=_precision(config),  # type: ignore[arg-type]
        max_steps=config.total_steps, max_epochs=config.epochs, logger=loggers,
        callbacks=[best_ckpt, last_ckpt, FinalStepCheckpoint(last), *callbacks],
        enable_progress_bar=not quiet, enable_model_summary=not quiet, use_distributed_sampler=False,
        num_sanity_val_steps=0, limit_val_batches=None if has_val else 0,
        log_every_n_steps=min(10, config.steps_per_epoch), default_root_dir=out, plugins=[AtomicCheckpointIO()],
    )
    return trainer, best_ckpt


def _export(out: Path, best: str, last: Path, what: str) -> None:
    """``model.pt`` and ``metrics.json`` from the best checkpoint, or the last one when there is none.

    ``best`` is ``""`` when no validation has run (a run without a validation split or shorter than one epoch).
    """
    chosen = Path(best) if best and Path(best).is_file() else last
    saved, model = load_bundle(chosen)
    save_bundle(out / "model.pt", saved, model)
    write_text_atomic(out / "metrics.json", json.dumps(saved.metrics, indent=2))
    miou = saved.metrics.get("val", {}).get("miou")
    log.info("trained %s: %s checkpoint (step %s, val mIoU %s) exported to %s", what, chosen.stem,
             saved.metrics.get("step"), "n/a" if miou is None else f"{miou:.4f}", out / "model.pt")


def _quiet_lightning() -> None:
    """Lightning sets its loggers to INFO when imported; keep them at WARNING unless geossl logs debug."""
    level = logging.DEBUG if log.getEffectiveLevel() <= logging.DEBUG else logging.WARNING
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    # our loaders draw each step's batch from the global step (geossl.data.module): resuming mid-epoch is exact
    warnings.filterwarnings("ignore", message=r".*resuming from a checkpoint that ended before the epoch ended.*")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")  # --resume


def _launched_by_lightning() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they re-run this command as rank > 0)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _check_resume(config: TrainConfig, out: Path) -> None:
    """The run to resume must have the same strategy and model."""
    saved = out / "config.yaml"
    if not saved.is_file():
        return
    before = yaml.safe_load(saved.read_text()) or {}
    for key in ("strategy", "arch", "encoder", "decoder_channels", "patch_size"):
        if before.get(key) != getattr(config, key):
            raise InputError(f"--{key.replace('_', '-')}", f"differs from the run being resumed in {out} "
                                                           f"({before.get(key)!r} there)")
