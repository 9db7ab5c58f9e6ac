"""End-to-end training on the synthetic scene: every strategy, checkpoints, resume, DDP, evaluate."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from geossl.catalog import load_catalog
from geossl.data.module import SslDataModule, plan_splits
from geossl.data.regions import region_class_counts
from geossl.models import load_bundle
from geossl.ssl import STRATEGIES
from geossl.train.config import TrainConfig
from geossl.train.run import train
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = {"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8], "patch_size": 64, "batch_size": 2,
        "steps_per_epoch": 1, "threads": 1}
# thresholds 0 so pseudo-labels are used from the first step; DWL past its warm-up after one step
PARAMS = {"fixmatch": {"threshold": 0.0}, "unimatch": {"threshold": 0.0}, "crossview": {"threshold": 0.0},
          "dwl": {"warmup_steps": 1}, "prototype": {"threshold": 0.0}}
#: The strategies' own modules (checkpointed under ``strategy.``, never exported).
OWNED = {"dwl": {"pseudo_head", "teacher"}, "prototype": {"prototypes"}}  # dwl: its EMA teacher too
_RUNS: dict[str, Path] = {}


def tiny_config(folder: Path, strategy: str, **extra) -> Path:
    path = folder / f"{strategy}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "strategy": {"name": strategy, **PARAMS.get(strategy, {})}, **extra}))
    return path


def train_run(strategy: str, catalog: Path, folder: Path) -> Path:
    """Train ``strategy`` for 2 steps (2 epochs of 1 step) once per session; return the run folder."""
    if strategy not in _RUNS:
        out = folder / strategy
        result = run_cli("train", MANIFEST, "--catalog", catalog, "--out", out,
                         "--config", tiny_config(folder, strategy), "--max-steps", "2")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip().endswith(str(out / "model.pt"))
        _RUNS[strategy] = out
    return _RUNS[strategy]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_strategy_trains_end_to_end(strategy, synth_catalog, runs_dir):
    run = train_run(strategy, synth_catalog, runs_dir)
    catalog = load_catalog(synth_catalog)
    bundle, model = load_bundle(run / "model.pt")
    assert bundle.strategy == strategy and bundle.patch_size == 64 and bundle.overlap == 16
    assert [c.name for c in bundle.classes] == [c.name for c in catalog.classes]
    assert bundle.bands == catalog.bands and bundle.nodata == catalog.nodata
    assert bundle.mean == [s.mean for s in catalog.band_stats]
    assert model(torch.zeros(1, 4, 64, 64)).shape == (1, 6, 64, 64)
    # the exported model is the segmenter alone; the strategy's own modules (DWL's pseudo head) stay in checkpoints
    exported = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    assert exported.keys() == model.state_dict().keys()
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {k.split(".")[1] for k in last if k.startswith("strategy.")} == OWNED.get(strategy, set())
    # Lightning checkpoints are self-describing and load safely (weights_only) too
    for name in ("best.ckpt", "last.ckpt"):
        ckpt_bundle, _ = load_bundle(run / "checkpoints" / name)
        assert ckpt_bundle.strategy == strategy and "val" in ckpt_bundle.metrics
    best = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    state = {k.removeprefix("model."): v for k, v in best["state_dict"].items()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    rows = metrics_rows(run)
    val = [r for r in rows if r.get("val_miou")]
    assert len(val) == 2 and all(0 <= float(r["val_miou"]) <= 1 for r in val)
    assert json.loads((run / "metrics.json").read_text())["val"]["pixels"] > 0
    if TrainConfig(strategy=strategy).strategy.data_spec().unlabeled:
        pseudo = [r for r in rows if r.get("pseudo_used_share")]
        assert len(pseudo) == 2
        assert any(float(r["pseudo_used_share"]) > 0 for r in pseudo)
        assert all(0 <= float(r["pseudo_accuracy"]) <= 1 for r in pseudo if r.get("pseudo_accuracy"))
    if strategy == "crossview":
        assert any(r.get("train_loss_overlap") for r in rows)
    if strategy == "dwl":
        assert any(r.get("train_loss_u") and float(r["train_loss_u"]) > 0 for r in rows)
        memory = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["ssl_state"]["memory"]
        assert sum(len(q) for q in memory["queues"]) > 0


def test_resume_continues_from_the_last_checkpoint(synth_catalog, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(tmp_path, "supervised")
    first = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config, "--max-steps", "2")
    assert first.exit_code == 0, first.output
    step2 = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    again = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config, "--max-steps", "2")
    assert again.exit_code == 2 and "--resume" in again.stderr
    resumed = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config,
                      "--max-steps", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    step4 = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert step2["global_step"] == 2 and step4["global_step"] == 4 and step4["epoch"] == 3
    # the optimizer state went on from step 2: Adam's step counters read 4, not 2
    assert all(int(s["step"]) == 4 for s in step4["optimizer_states"][0]["state"].values())
    assert sorted({int(r["epoch"]) for r in metrics_rows(out) if r.get("val_miou")}) == [0, 1]
    with open(out / "logs" / "resume-1" / "metrics.csv") as f:
        assert sorted({int(r["epoch"]) for r in csv.DictReader(f) if r.get("val_miou")}) == [2, 3]


def training_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def assert_identical(a, b, where: str = "checkpoint") -> None:
    """Nested dicts / lists of tensors and plain values: same structure, ``torch.equal`` tensors."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_identical(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    else:
        assert a == b, where


def assert_same_training_state(a: dict, b: dict) -> None:
    """Every parameter and buffer, the optimizer (moments, step counts, learning rates) and the strategy state."""
    assert a["global_step"] == b["global_step"]
    for part in ("state_dict", "optimizer_states", "lr_schedulers", "ssl_state"):
        assert_identical(a[part], b[part], part)


class Killed(Exception):
    """What :class:`KillAt` raises."""


class KillAt(Callback):
    """Ends the run abruptly when it reaches a step: nothing after the last checkpoint reaches the disk."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


# two epochs of 2 steps and one of 1; memory and warm-up small enough that DWL's FIFO drops batches meanwhile
RESUMABLE = {**TINY, "steps_per_epoch": 2, "max_steps": 5}
# prototypes re-drawn after one idle step, so the maintenance's random draws run through the resume
RESUME_PARAMS = {**PARAMS, "dwl": {"warmup_steps": 1, "memory_batches": 3},
                 "prototype": {"threshold": 0.0, "reinit_after": 1}}


def resumable_config(strategy: str, **options) -> TrainConfig:
    return TrainConfig(**{**RESUMABLE, "strategy": {"name": strategy, **RESUME_PARAMS.get(strategy, {}), **options}})


@pytest.mark.parametrize(("strategy", "options"), [("supervised", {}), ("unimatch", {}), ("dwl", {}),
                                                   ("fixmatch", {"teacher": "ema", "ema_decay": 0.5}),
                                                   ("prototype", {})])
def test_a_killed_run_resumes_to_the_uninterrupted_weights(strategy, options, synth_catalog, tmp_path):
    """Killed during step 3 (last checkpoint: step 2), then resumed: the same 5 steps as an uninterrupted run."""
    config = resumable_config(strategy, **options)
    train(MANIFEST, config, tmp_path / "once", synth_catalog, quiet=True)
    with pytest.raises(Killed):
        train(MANIFEST, config, tmp_path / "killed", synth_catalog, quiet=True, callbacks=[KillAt(3)])
    assert training_state(tmp_path / "killed")["global_step"] == 2
    train(MANIFEST, config, tmp_path / "killed", synth_catalog, resume=True, quiet=True)
    once, resumed = training_state(tmp_path / "once"), training_state(tmp_path / "killed")
    assert once["global_step"] == 5
    assert_same_training_state(once, resumed)
    if strategy == "dwl":  # the class memory went on from step 2: 3 batches in the FIFO, as without the kill
        assert max(len(q) for q in resumed["ssl_state"]["memory"]["queues"]) == 3
    if strategy == "prototype":  # the prototypes went on from step 2 (compared above, in the state dict)
        assert bool(resumed["state_dict"]["strategy.prototypes.ready"].any())
    if options.get("teacher") == "ema":  # the teacher is checkpointed, one update per step, and lags the model
        assert_ema_teacher(resumed, 5)


def assert_ema_teacher(state: dict, steps: int) -> None:
    weights = state["state_dict"]
    assert int(weights["strategy.teacher.updates"]) == steps
    teacher = {k.removeprefix("strategy.teacher.net."): v for k, v in weights.items()
               if k.startswith("strategy.teacher.net.")}
    model = {k.removeprefix("model."): v for k, v in weights.items() if k.startswith("model.")}
    assert teacher.keys() == model.keys()
    assert not all(torch.equal(teacher[k], model[k]) for k in model)


def test_a_run_stopped_mid_epoch_by_max_steps_resumes_exactly(synth_catalog, tmp_path):
    """``--max-steps 3`` (mid-epoch) then ``--resume --max-steps 5`` equals ``--max-steps 5``.

    A constant learning rate and DWL sharpness, since those follow the run's total steps by design. The EMA
    teacher's update of the last step is in the checkpoint written right after it.
    """
    full = resumable_config("dwl", k_start=10.0, k_end=10.0, teacher="ema", ema_decay=0.5)
    full = full.model_copy(update={"poly_power": 0.0})
    train(MANIFEST, full, tmp_path / "once", synth_catalog, quiet=True)
    short = full.model_copy(update={"max_steps": 3})
    train(MANIFEST, short, tmp_path / "twice", synth_catalog, quiet=True)
    assert training_state(tmp_path / "twice")["global_step"] == 3
    assert_ema_teacher(training_state(tmp_path / "twice"), 3)
    train(MANIFEST, full, tmp_path / "twice", synth_catalog, resume=True, quiet=True)
    assert_same_training_state(training_state(tmp_path / "once"), training_state(tmp_path / "twice"))


def test_a_checkpoint_write_that_fails_leaves_the_previous_checkpoint(tmp_path):
    from geossl.train.checkpoints import AtomicCheckpointIO

    io, path = AtomicCheckpointIO(), tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 2, "w": torch.ones(3)}, path)
    with pytest.raises(Exception):  # noqa: B017 - torch.save fails on a lambda, half-way through the write
        io.save_checkpoint({"global_step": 3, "w": torch.zeros(1000), "bad": lambda: 0}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 2
    assert [f.name for f in path.parent.iterdir()] == ["last.ckpt"]


@pytest.fixture(scope="module")
def no_val_catalog(synth_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The synthetic scene ingested without a validation split: (manifest, catalog folder)."""
    from geossl.ingest.run import IngestOptions, ingest

    folder = tmp_path_factory.mktemp("no_val")
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["splits"]["blocks"].update(val_fraction=0.0, test_fraction=0.25)
    path = folder / "no_val.yaml"
    path.write_text(yaml.safe_dump(manifest))
    ingest(path, IngestOptions(out=folder / "catalog", data_root=synth_dir, workers=1, quiet=True))
    return path, folder / "catalog"


@pytest.mark.parametrize(("strategy", "validation"), [("supervised", True), ("dwl", True), ("dwl", False)])
def test_a_run_shorter_than_one_epoch_still_writes_its_checkpoint_and_model(strategy, validation, synth_catalog,
                                                                            no_val_catalog, tmp_path):
    manifest, catalog = (MANIFEST, synth_catalog) if validation else no_val_catalog
    assert bool(plan_splits(load_catalog(catalog), catalog, None, 0).of("val")) == validation
    out = tmp_path / "run"
    config = tiny_config(tmp_path, strategy, steps_per_epoch=4)
    result = run_cli("train", manifest, "--catalog", catalog, "--out", out, "--config", config, "--max-steps", "1")
    assert result.exit_code == 0, result.output
    assert training_state(out)["global_step"] == 1
    bundle, model = load_bundle(out / "model.pt")
    assert bundle.strategy == strategy and bundle.metrics["step"] == 1
    assert json.loads((out / "metrics.json").read_text())["step"] == 1
    state = {k.removeprefix("model."): v for k, v in training_state(out)["state_dict"].items()}
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_unlabeled_truth_never_reaches_the_loss(synth_catalog):
    from geossl.train.config import TrainConfig
    from geossl.train.run import make_bundle
    from geossl.train.task import SegmentationTask

    catalog = load_catalog(synth_catalog)
    config = TrainConfig(**{**TINY, "strategy": {"name": "crossview", "threshold": 0.0}})
    task = SegmentationTask(config.model_dump(mode="json"), make_bundle(config, catalog).model_dump(mode="json"))
    plan = plan_splits(catalog, synth_catalog, None, 0)
    data = SslDataModule(catalog, synth_catalog, plan, config.strategy.data_spec(), 64, 2, 2, 1)
    loaders = data.train_dataloader()
    batch = {"labeled": next(iter(loaders["labeled"])), "unlabeled": next(iter(loaders["unlabeled"]))}
    assert "truth" in batch["unlabeled"]
    seen = []
    step = task.ssl.training_step

    def spy(batch_l, batch_u, *args):
        seen.append(set(batch_u))
        return step(batch_l, batch_u, *args)

    task.ssl.training_step = spy
    results = []
    for truth in (batch["unlabeled"]["truth"], torch.randint(0, 6, batch["unlabeled"]["truth"].shape)):
        b = {"labeled": batch["labeled"], "unlabeled": {**batch["unlabeled"], "truth": truth}}
        task.pseudo_stats.reset()
        torch.manual_seed(0)
        loss = task.training_step(b, 0)
        results.append((float(loss), task.pseudo_stats.compute()["accuracy"]))
    assert all("truth" not in keys for keys in seen)
    assert results[0][0] == results[1][0]            # same loss whatever the hidden truth says
    assert results[0][1] != results[1][1]            # while the diagnostic does see it


def test_evaluate_writes_metrics_and_confusion_png(synth_catalog, runs_dir, tmp_path):
    run = train_run("supervised", synth_catalog, runs_dir)
    out = tmp_path / "eval"
    result = run_cli("evaluate", run / "model.pt", MANIFEST, "--catalog", synth_catalog, "--split", "test",
                     "--out", out, "--threads", "1")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    catalog = load_catalog(synth_catalog)
    test_regions = [r for r in plan_splits(catalog, synth_catalog, None, 0).regions if r.split == "test"]
    counts = region_class_counts([synth_catalog / s.labels for s in catalog.scenes], test_regions,
                                 [c.id for c in catalog.classes])
    truth_per_class = sum(counts.values())
    cm = np.array(metrics["confusion_matrix"])
    # every labeled test pixel is counted exactly once, with its true class
    np.testing.assert_array_equal(cm.sum(axis=1), truth_per_class)
    assert metrics["pixels"] == int(truth_per_class.sum()) and 0 <= metrics["miou"] <= 1
    assert set(metrics["iou"]) == {c.name for c in catalog.classes}


def test_two_process_ddp_on_cpu_with_gloo(synth_catalog, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "geossl.cli", "-q", "train", str(MANIFEST), "--catalog", str(synth_catalog),
           "--out", str(out), "--config", str(tiny_config(tmp_path, "supervised")), "--max-steps", "1",
           "--accelerator", "cpu", "--devices", "2"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    bundle, _ = load_bundle(out / "model.pt")
    catalog = load_catalog(synth_catalog)
    val = [r for r in plan_splits(catalog, synth_catalog, None, 0).regions if r.split == "val"]
    counts = region_class_counts([synth_catalog / s.labels for s in catalog.scenes], val,
                                 [c.id for c in catalog.classes])
    # each rank evaluated half of the validation windows; the synced matrix holds every pixel once
    assert bundle.metrics["val"]["pixels"] == int(sum(counts.values()).sum())


def test_precision_is_mixed_only_on_gpu():
    from geossl.train.config import TrainConfig
    from geossl.train.run import _precision

    assert _precision(TrainConfig(accelerator="cpu")) == "32-true"
    auto = _precision(TrainConfig(accelerator="auto"))
    assert auto == ("32-true" if not torch.cuda.is_available() else auto)
    assert auto != "32-true" or not torch.cuda.is_available()


def test_any_band_count_trains(tmp_path):
    from geossl.ingest.run import IngestOptions, ingest
    from geossl.synth import SynthConfig, write_scene

    write_scene(tmp_path / "scene", SynthConfig(size=192, tile=64, bands=3, seed=1))
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["imagery"]["bands"] = ["b1", "b2", "b3"]
    (tmp_path / "scene" / "three.yaml").write_text(yaml.safe_dump(manifest))
    catalog = tmp_path / "catalog"
    ingest(tmp_path / "scene" / "three.yaml", IngestOptions(out=catalog, workers=1, quiet=True))
    out = tmp_path / "run"
    config = tiny_config(tmp_path, "supervised", patch_size=32)
    result = run_cli("train", tmp_path / "scene" / "three.yaml", "--catalog", catalog, "--out", out,
                     "--config", config, "--max-steps", "1")
    assert result.exit_code == 0, result.output
    bundle, model = load_bundle(out / "model.pt")
    assert bundle.bands == ["b1", "b2", "b3"] and bundle.model.in_channels == 3
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 6, 32, 32)
