"""Regional runs: idempotent, resumable after kill -9, locked, reported, with one-line config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyogrio
import pytest
import yaml

from geossl import killpoint
from geossl.pipeline.lock import run_lock
from tests.conftest import ROOT, run_cli
from tests.predict_support import make_bundle, save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An untrained but genuine geossl checkpoint for the synthetic classes (training is tested elsewhere)."""
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", make_bundle(patch_size=64, overlap=16))


def _pipeline(folder: Path, checkpoint: Path, **steps) -> Path:
    """A pipeline on a generated 384² scene with a given checkpoint; ``steps`` override step options."""
    config = {
        "name": "t",
        "manifest": str(ROOT / "data_manifests" / "synthetic.yaml"),
        "steps": {
            "synth": {"size": 384},
            "train": {"checkpoint": str(checkpoint)},
            "predict": {"batch_size": 4, "block_width": 256},
            "vectorize": {"min_area": 300, "simplify": 5},
            "evaluate": {"split": "test"},
            "report": {"quicklook_size": 256},
            **steps,
        },
    }
    path = folder / "pipeline.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def _run(pipeline: Path, run_dir: Path, *extra: str):
    return run_cli("run", pipeline, "--run-dir", run_dir, *extra)


def _statuses(run_dir: Path) -> dict[str, str]:
    summary = json.loads((run_dir / "summary.json").read_text())
    return {k: v["status"] for k, v in summary["steps"].items()}


#: STAC Item fields that differ between any two runs (clock, run directory, timings).
VOLATILE = {"datetime", "created", "geossl:source", "model_seconds"}


def _stable(value: object) -> object:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _products(run_dir: Path) -> dict[str, object]:
    """Everything a run delivers, comparable between runs: rasters and styles as bytes, STAC Items without
    clock and timings, vectors as WKB + attributes (a GeoPackage also stores when it was written)."""
    out: dict[str, object] = {}
    for path in sorted([*(run_dir / "predict").glob("*.tif"), *(run_dir / "predict").glob("*.qml"),
                        *(run_dir / "vectors").glob("*.qml")]):
        out[f"{path.parent.name}/{path.name}"] = path.read_bytes()
    for path in sorted((run_dir / "predict").glob("*.json")):
        out[path.name] = _stable(json.loads(path.read_text()))
    for path in sorted((run_dir / "vectors").glob("*.gpkg")):
        frame = pyogrio.read_dataframe(path, layer=path.stem)
        out[path.name] = (frame.geometry.to_wkb().tolist(), frame.drop(columns="geometry").to_dict("list"))
    return out


def _assert_same_products(a: Path, b: Path) -> None:
    pa, pb = _products(a), _products(b)
    assert pa.keys() == pb.keys() and "predict/scene_classes.tif" in pa and "scene.gpkg" in pa
    for key in pa:
        assert pa[key] == pb[key], key


def _leftovers(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob("*") if ".tmp-" in p.name or ".staging-" in p.name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint) -> tuple[Path, Path]:
    """One uninterrupted run: (pipeline file, run dir)."""
    folder = tmp_path_factory.mktemp("reference")
    pipeline = _pipeline(folder, checkpoint)
    result = _run(pipeline, folder / "run")
    assert result.exit_code == 0, result.output
    return pipeline, folder / "run"


def test_a_run_produces_every_output_and_a_self_contained_report(reference):
    _, run_dir = reference
    assert set(_statuses(run_dir)) == {"synth", "ingest", "train", "predict", "vectorize", "evaluate", "report"}
    assert set(_statuses(run_dir).values()) == {"done"}
    assert (run_dir / "predict" / "scene_classes.tif").is_file()
    assert (run_dir / "vectors" / "scene.gpkg").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "ok" and 0 <= summary["metrics"]["miou"] <= 1
    html = (run_dir / "report" / "report.html").read_text()
    for section in ("Maps", "Accuracy", "Class areas", "Run", "Outputs", "predicted classes", "confidence"):
        assert section in html
    assert html.count("data:image/png;base64,") >= 4  # RGB, classes, confidence, confusion matrix
    assert "http://" not in html and "https://" not in html  # opens offline
    assert list((run_dir / "logs").glob("run-*.log"))


def test_a_second_run_skips_everything(reference):
    pipeline, run_dir = reference
    before = {p: p.stat().st_mtime_ns for p in (run_dir / "predict").glob("*")}
    assert _run(pipeline, run_dir).exit_code == 0
    assert set(_statuses(run_dir).values()) == {"skipped"}
    assert {p: p.stat().st_mtime_ns for p in (run_dir / "predict").glob("*")} == before


def test_a_changed_option_reruns_only_the_affected_steps(reference, tmp_path):
    pipeline, run_dir = reference
    changed = _pipeline(tmp_path, Path(yaml.safe_load(pipeline.read_text())["steps"]["train"]["checkpoint"]),
                        vectorize={"min_area": 1000, "simplify": 5})
    assert _run(changed, run_dir).exit_code == 0
    assert _statuses(run_dir) == {"synth": "skipped", "ingest": "skipped", "train": "skipped",
                                  "predict": "skipped", "vectorize": "done", "evaluate": "skipped",
                                  "report": "done"}
    assert _run(pipeline, run_dir, "--force", "predict").exit_code == 0
    assert _statuses(run_dir)["predict"] == "done" and _statuses(run_dir)["ingest"] == "skipped"


#: The reference run's outputs of each step (``STEP:written`` kills after they are all written).
WRITTEN = {"predict": ["scene_classes.tif", "scene_confidence.tif", "scene_classes.qml", "scene.json"],
           "vectorize": ["scene.gpkg", "scene.qml"]}


@pytest.mark.parametrize("point", [
    "predict:2",  # during predict: the second block starts, the first one's pieces are written (staged)
    "vectorize:2",  # during vectorize: tracing starts, the sieved raster is written (staged)
    "predict:written",  # predict's outputs are in place, state.json does not record them yet
])
def test_kill_at_a_point_then_rerun_equals_an_uninterrupted_run(reference, tmp_path, point):
    """``GEOSSL_KILL_AT`` kills the run with SIGKILL at an exact point: no timing, whatever the machine's speed."""
    pipeline, ref_dir = reference
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "geossl.cli", "-q", "run", str(pipeline), "--run-dir", str(run_dir)]
    killed = subprocess.run(cmd, env={**os.environ, killpoint.ENV: point}, capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    step, where = point.split(":")
    state = json.loads((run_dir / "state.json").read_text())["steps"]
    assert state.get(step, {"record": None, "scenes": {}}) == {"record": None, "scenes": {}}, state
    assert all(state[s]["record"] for s in ("synth", "ingest", "train"))
    if where == killpoint.WRITTEN:
        folder = run_dir / ("vectors" if step == "vectorize" else step)
        assert all((folder / name).is_file() for name in WRITTEN[step])
    else:
        assert _leftovers(run_dir), "the kill came before the step had written anything"
    result = _run(pipeline, run_dir)
    assert result.exit_code == 0, result.output
    statuses = _statuses(run_dir)
    assert statuses[step] == "done" and statuses["ingest"] == "skipped"
    _assert_same_products(ref_dir, run_dir)
    assert not _leftovers(run_dir)


def test_a_malformed_kill_point_is_refused(reference, tmp_path, monkeypatch):
    pipeline, _ = reference
    monkeypatch.setenv(killpoint.ENV, "predict:soon")
    result = _run(pipeline, tmp_path / "run")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "GEOSSL_KILL_AT" in lines[0] and "predict:soon" in lines[0], result.stderr


def test_a_second_concurrent_run_is_refused(reference, tmp_path):
    pipeline, _ = reference
    run_dir = tmp_path / "locked"
    with run_lock(run_dir):
        result = _run(pipeline, run_dir)
    assert result.exit_code == 2
    assert "another geossl run is using this run directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"steps": {"clasify": {}}}, "field 'steps.clasify': unknown field"),
        ({"steps": {"predict": {"batchsize": 4}}}, "field 'steps.predict.batchsize': unknown field"),
        ({"steps": {"train": {"strategy": 3}}}, "field 'steps.train.strategy'"),
        ({"manifest": "missing/manifest.yaml"}, "manifest.yaml does not exist"),
    ],
)
def test_bad_pipelines_exit_2_with_one_line(tmp_path, patch, message):
    config = {"name": "bad", "manifest": str(ROOT / "data_manifests" / "synthetic.yaml"), **patch}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = _run(path, tmp_path / "run")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_shipped_pipelines_validate():
    from geossl.pipeline.config import load_pipeline

    for path in (ROOT / "pipelines").glob("*.yaml"):
        config = load_pipeline(path)
        assert config.manifest.is_file(), path
