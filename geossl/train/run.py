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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from geossl import progress
from geossl.catalog import CATALOG_NAME, Catalog
from geossl.classweights import balanced_weights
from geossl.config import flag_name, read_yaml, validate_model
from geossl.data.module import SplitPlan, SslDataModule, plan_splits
from geossl.errors import InputError
from geossl.io.atomic import write_text_atomic
from geossl.io.names import METRICS_FILE
from geossl.manifest import Split
from geossl.models import ModelBundle, ModelConfig, Segmenter, described_bands, load_bundle, save_bundle
from geossl.models.config import ModelOptions
from geossl.quiet import quiet_lightning
from geossl.train.config import TrainConfig
from geossl.train.inputs import bundle_mismatch, ensure_catalog, trained_on

if TYPE_CHECKING:
    from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

#: The last checkpoint of a run, in its folder (what ``--resume`` continues).
LAST = Path("checkpoints") / "last.ckpt"
#: The exported model bundle in a training run's folder (what ``geossl predict`` takes).
MODEL_FILE = "model.pt"
#: The training curves in a run's folder: Lightning's CSV log (a resumed run logs into ``logs/resume-N/``).
CURVES = Path("logs") / "metrics.csv"
#: What a resumed run must share with the run it continues, besides its strategy and the strategy's options.
RESUME_SAME = ("arch", "encoder", "decoder_channels", "patch_size")
#: What ``--init-from``'s model must share with the model a run builds (its weights are loaded as they are).
INIT_SAME = ("arch", "encoder", "decoder_channels")


def check_against_catalog(config: TrainConfig, catalog: Catalog) -> None:
    """Check what the options alone cannot tell.

    The encoder (by building the model once) and patch size against the catalog's bands and scenes, and whether
    ``label_fraction`` leaves the strategy an unlabeled area.
    """
    Segmenter(model_config(config, catalog), catalog.bands)
    if config.init_from is not None:
        check_init_from(config.init_from, model_config(config, catalog), catalog)
    largest = max(min(s.width, s.height) for s in catalog.scenes)
    if config.patch_size > largest:
        raise InputError("--patch-size", f"{config.patch_size} px is larger than every scene (the largest fits "
                                         f"{largest} px windows)")
    if config.strategy.data_spec().unlabeled and config.label_fraction == 1.0:
        raise InputError("--label-fraction", f"1.0 labels every train region: nothing is left unlabeled for "
                                             f"{config.strategy.name}")
    prior_in_use(config, catalog)


def check_init_from(path: Path, model: ModelConfig, catalog: Catalog) -> None:
    """``--init-from``'s model must be the model this run builds: architecture, encoder, decoder, bands, classes."""
    bundle, _ = load_bundle(path)
    problem = bundle_mismatch(bundle, catalog.classes, catalog.bands, "the catalog", "the catalog")
    if problem:
        raise InputError(path, f"--init-from: its {problem}")
    for key in INIT_SAME:
        theirs, mine = getattr(bundle.model, key), getattr(model, key)
        if theirs != mine:
            raise InputError(path, f"--init-from: its {key} is {theirs!r}, this run builds {mine!r} (give "
                                   f"{flag_name(key)} {theirs})")


def prior_in_use(config: TrainConfig, catalog: Catalog) -> bool:
    """Whether the unlabeled windows carry the catalog's prior map to a second teacher (:mod:`geossl.ssl.prior`).

    ``prior.use``: ``auto`` uses it when the catalog has one and the strategy makes pseudo-labels; ``on``
    requires both (an :class:`InputError` otherwise); ``off`` never. A weight of 0 is off too.
    """
    use, strategy = config.prior.use, config.strategy
    has = bool(catalog.scenes) and all(s.prior for s in catalog.scenes)
    if use == "on" and not has:
        raise InputError("--prior", "on, but the catalog has no prior map (give the manifest a prior: and ingest "
                                    "again)")
    if use == "on" and not strategy.makes_pseudo_labels:
        raise InputError("--prior", f"on, but strategy {strategy.name} makes no pseudo-labels for a prior to teach")
    return use != "off" and has and strategy.makes_pseudo_labels and config.prior.weight > 0


def model_config(config: TrainConfig, catalog: Catalog) -> ModelConfig:
    """The model a config asks for, with the catalog's bands in and classes out."""
    return validate_model(ModelConfig, {
        **config.model_dump(include=set(ModelOptions.model_fields)), "in_channels": len(catalog.bands),
        "num_classes": len(catalog.classes),
    }, "model options")


def make_bundle(config: TrainConfig, catalog: Catalog, plan: SplitPlan | None = None) -> ModelBundle:
    """The self-description of the model being trained; with ``plan``, the labeled area it is trained on."""
    return ModelBundle(classes=catalog.classes, ignore_id=catalog.ignore_id, bands=catalog.bands,
                       source_bands=described_bands(Path(scene.source) for scene in catalog.scenes),
                       mean=[s.mean for s in catalog.band_stats],
                       std=[s.std for s in catalog.band_stats], nodata=catalog.nodata,
                       patch_size=config.patch_size, overlap=config.prediction_overlap,
                       resolution=list(catalog.resolution), crs=catalog.crs,
                       grid_origin=[catalog.scenes[0].transform[2], catalog.scenes[0].transform[5]],
                       model=model_config(config, catalog).model_copy(update={"weights": "none"}),
                       strategy=config.strategy.name,
                       trained_on=None if plan is None else trained_on(catalog, plan, config.label_fraction,
                                                                       config.label_selection, config.seed))


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


@dataclass
class Prepared:
    """A run's inputs, checked: the catalog, the regions of each split, the data to train on."""

    catalog: Catalog
    plan: SplitPlan
    data: SslDataModule


def train(manifest_path: Path, config: TrainConfig, out: Path, catalog_dir: Path, data_root: Path | None = None,
          resume: bool = False, quiet: bool = False, callbacks: Sequence[Callback] = ()) -> Path:
    """Train; return the path of the exported model bundle (``out/model.pt``): prepare → fit → export.

    ``callbacks`` are extra Lightning callbacks (the run's own checkpoint callbacks are always there).
    """
    quiet_lightning()
    run = prepare(manifest_path, config, out, catalog_dir, data_root, resume, quiet)
    trainer, best = fit(run, config, out, resume, quiet, callbacks)
    if trainer.is_global_zero:
        _export(out, best.best_model_path, out / LAST, f"{config.strategy.name} ({config.encoder}) for "
                                                       f"{trainer.global_step} steps")
    return out / MODEL_FILE


def prepare(manifest_path: Path, config: TrainConfig, out: Path, catalog_dir: Path, data_root: Path | None,
            resume: bool, quiet: bool) -> Prepared:
    """Check every input (nothing is written before), plan the splits and the data the strategy asks for."""
    _, catalog, root = ensure_catalog(manifest_path, catalog_dir, data_root, quiet)
    check_against_catalog(config, catalog)
    _check_out(out, config, resume, _launched_by_lightning())
    plan = plan_splits(catalog, root, config.label_fraction, config.seed, config.label_selection)
    if config.strategy.data_spec().unlabeled and not plan.of(Split.UNLABELED):
        raise InputError(root / CATALOG_NAME, f"no unlabeled region for {config.strategy.name}")
    if not plan.of(Split.VAL):
        log.warning("the catalog has no validation region: no validation; the exported model is the last step's")
    if prior_in_use(config, catalog):
        log.info("the catalog's prior map teaches the unlabeled area: weight %s, down to 0 at %d%% of the steps",
                 config.prior.weight, round(100 * config.prior.until))
    return Prepared(catalog, plan, data_module(config, catalog, root, plan))


def fit(run: Prepared, config: TrainConfig, out: Path, resume: bool, quiet: bool,
        callbacks: Sequence[Callback]) -> tuple[Any, Any]:
    """Train the task on the prepared data (from the last checkpoint with ``resume``).

    Returns the trainer and its best-checkpoint callback.
    """
    import lightning.pytorch as pl

    from geossl.train.task import SegmentationTask

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    bundle = make_bundle(config, run.catalog, run.plan)
    task = SegmentationTask(config.model_dump(mode="json"), bundle.model_dump(mode="json"),
                            class_weights(config, run.plan))
    out.mkdir(parents=True, exist_ok=True)
    if not _launched_by_lightning():
        write_text_atomic(out / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    trainer, best = _trainer(config, out, out / LAST, bool(run.plan.of(Split.VAL)), resume, quiet, callbacks)
    trainer.fit(task, datamodule=run.data, ckpt_path=out / LAST if resume else None)
    return trainer, best


def _check_out(out: Path, config: TrainConfig, resume: bool, launched: bool) -> None:
    """A new run needs a fresh folder; ``--resume`` needs a last checkpoint of the same strategy and model."""
    if resume and not (out / LAST).is_file():
        raise InputError(out, "--resume given but there is no checkpoints/last.ckpt to resume from")
    if not resume and not launched and (out / LAST.parent).exists():
        raise InputError(out, "already holds a training run; pass --resume to continue it or choose another --out")
    if resume:
        _check_resume(config, out)


def data_module(config: TrainConfig, catalog: Catalog, root: Path, plan: SplitPlan) -> SslDataModule:
    """The training and validation data: the windows the strategy's options ask for, in the run's batch sizes.

    The unlabeled windows carry the catalog's prior map when :func:`prior_in_use`.
    """
    spec = replace(config.strategy.data_spec(), prior=prior_in_use(config, catalog))
    return SslDataModule(catalog, root, plan, spec, config.patch_size, config.batch_size,
                         config.unlabeled_batch_size or config.batch_size, config.steps_per_epoch,
                         seed=config.seed, workers=config.workers, pseudo_truth=config.pseudo_truth,
                         labeled_sampling=config.labeled_sampling)


def _trainer(config: TrainConfig, out: Path, last: Path, has_val: bool, resume: bool, quiet: bool,
             callbacks: Sequence[Callback]) -> tuple[Any, Any]:
    """The Lightning trainer (loggers, devices, precision, step limits) and its best-checkpoint callback."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from geossl.train.checkpoints import AtomicCheckpointIO, FinalStepCheckpoint
    from geossl.train.progress import StepProgress

    # two callbacks: Lightning 2.6 writes save_last only when the monitored checkpoint was written too
    best_ckpt = ModelCheckpoint(dirpath=last.parent, filename="best", monitor="val_miou", mode="max",
                                save_top_k=1 if has_val else 0, auto_insert_metric_name=False,
                                enable_version_counter=False, save_on_train_epoch_end=False)
    last_ckpt = ModelCheckpoint(dirpath=last.parent, filename=last.stem, monitor=None, save_top_k=1,
                                enable_version_counter=False, save_on_train_epoch_end=not has_val)
    # a resumed run logs beside the first one (Lightning's CSV logger would overwrite logs/metrics.csv)
    version = f"resume-{len(list((out / 'logs').glob('resume-*'))) + 1}" if resume else ""
    loggers: list[Any] = [CSVLogger(out, name=CURVES.parent.name, version=version)]
    if importlib.util.find_spec("tensorboard") is not None:
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(out, name="logs", version="tensorboard"))
    devices = config.devices
    trainer = pl.Trainer(
        accelerator=config.accelerator, devices=devices,
        strategy="ddp" if isinstance(devices, int) and devices > 1 else "auto",
        precision=_precision(config),  # type: ignore[arg-type]
        max_steps=config.total_steps, max_epochs=config.epochs, logger=loggers,
        callbacks=[best_ckpt, last_ckpt, FinalStepCheckpoint(last), StepProgress(), *callbacks],
        enable_progress_bar=not quiet and not progress.enabled(), enable_model_summary=not quiet,
        use_distributed_sampler=False,
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
    save_bundle(out / MODEL_FILE, saved, model)
    write_text_atomic(out / METRICS_FILE, json.dumps(saved.metrics, indent=2))
    miou = saved.metrics.get("val", {}).get("miou")
    log.info("trained %s: %s checkpoint (step %s, val mIoU %s) exported to %s", what, chosen.stem,
             saved.metrics.get("step"), "n/a" if miou is None else f"{miou:.4f}", out / MODEL_FILE)


def _launched_by_lightning() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (they re-run this command as rank > 0)."""
    return os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("NODE_RANK", "0") != "0"


def _check_resume(config: TrainConfig, out: Path) -> None:
    """The run to resume must have the same model and the same strategy, with the same options."""
    saved = out / "config.yaml"
    if not saved.is_file():
        return
    before = read_yaml(saved)
    for key in RESUME_SAME:
        if before.get(key) != getattr(config, key):
            raise InputError(flag_name(key), f"differs from the run being resumed in {out} ({before.get(key)!r} there)")
    earlier = validate_model(TrainConfig, {k: v for k, v in before.items() if k in ("strategy", "strategy_params",
                                                                                    "prior")}, saved)
    if "prior" in before and earlier.prior != config.prior:
        raise InputError("--prior", f"differs from the run being resumed in {out} ({earlier.prior} there)")
    strategy = earlier.strategy
    if strategy.name != config.strategy.name:
        raise InputError("--strategy", f"differs from the run being resumed in {out} ({strategy.name!r} there)")
    theirs, mine = strategy.model_dump(mode="json"), config.strategy.model_dump(mode="json")
    changed = next((k for k in mine if mine[k] != theirs[k]), None)
    if changed is not None:
        raise InputError("--strategy-option", f"{changed} differs from the run being resumed in {out} "
                                              f"({theirs[changed]!r} there)")
