"""Steps hand typed outputs to the steps after them (kept in state.json across runs); a run uses one Dask cluster."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from distributed import LocalCluster, get_task_stream

from geossl import parallel
from geossl.pipeline.outputs import IngestOutput, PredictedScene, PredictOutput, TrainOutput, VectorizeOutput
from geossl.pipeline.state import RunState, fingerprint, recorded
from geossl.predict.run import PredictOptions, predict_with
from geossl.predict.runner import ModuleModel
from geossl.synth import SynthConfig, manifest_dict, write_scene
from tests.conftest import ROOT, run_cli
from tests.predict_support import SignatureClassifier, make_bundle, make_scene, read, save_checkpoint


class CountedCluster(LocalCluster):
    """A real LocalCluster that notes each start (the class geossl.parallel starts during these tests)."""

    started: ClassVar[list[str]] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        CountedCluster.started.append(self.scheduler_address)


@pytest.fixture
def clusters(monkeypatch) -> list[str]:
    """Scheduler addresses of the local Dask clusters started while the test runs."""
    monkeypatch.setattr(parallel, "LocalCluster", CountedCluster)
    CountedCluster.started.clear()
    return CountedCluster.started


@pytest.fixture(scope="module")
def two_scenes(tmp_path_factory) -> Path:
    """Two synthetic 256² scenes side by side (ids ``scene`` and ``scene-2``) and a pipeline over them."""
    folder = tmp_path_factory.mktemp("two")
    data = folder / "data"
    for name, seed, column in (("west", 1, 0), ("east", 2, 1)):
        write_scene(data / name, SynthConfig(size=256, tile=128, seed=seed, origin=(500000.0 + column * 2560,
                                                                                    5_100_000.0)))
    manifest = manifest_dict("two", 4, "west/scene.tif", "west/labels.tif")
    manifest["imagery"]["paths"].append("east/scene.tif")
    manifest["labels"]["rasters"].append("east/labels.tif")
    (data / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    checkpoint = save_checkpoint(folder / "model.pt", make_bundle(patch_size=64, overlap=16))
    pipeline = {"name": "two", "manifest": str(data / "manifest.yaml"), "data_root": str(data),
                "steps": {"train": {"checkpoint": str(checkpoint)}, "predict": {"batch_size": 8},
                          "vectorize": {"min_area": 300}, "report": {"quicklook_size": 128}}}
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    return folder


def _run(folder: Path, *extra: str) -> dict:
    result = run_cli("run", folder / "pipeline.yaml", "--run-dir", folder / "run", *extra)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(folder / "run" / "report" / "report.html")
    return json.loads((folder / "run" / "summary.json").read_text())


def _statuses(summary: dict) -> dict[str, str]:
    return {name: step["status"] for name, step in summary["steps"].items()}


def test_a_two_scene_run_starts_one_dask_cluster(two_scenes, clusters):
    summary = _run(two_scenes)
    assert set(_statuses(summary).values()) == {"done"}
    # ingest, predict and vectorize of both scenes all ran on it (each used to start its own: five clusters)
    assert len(clusters) == 1, clusters
    state = RunState.load(two_scenes / "run")
    assert set(state.steps["predict"].scenes) == set(state.steps["vectorize"].scenes) == {"scene", "scene-2"}


def test_state_json_keeps_each_steps_typed_output(two_scenes):
    run_dir = two_scenes / "run"
    state = RunState.load(run_dir)
    record = state.steps["predict"].record
    predict = recorded(record, record.hash, run_dir, PredictOutput)
    assert predict is not None and set(predict.scenes) == {"scene", "scene-2"}
    for scene, predicted in predict.scenes.items():
        item = json.loads((run_dir / "predict" / f"{scene}.json").read_text())
        assert predicted == PredictedScene.of(item, run_dir / "predict" / f"{scene}.json")
        assert predicted.classes == run_dir / "predict" / item["assets"]["classes"]["href"]
        assert predicted == recorded(state.steps["predict"].scenes[scene], f"{record.hash}:{scene}", run_dir,
                                     PredictedScene)
    ingest = IngestOutput.model_validate(state.steps["ingest"].record.result)
    assert set(ingest.images) == {"scene", "scene-2"} and ingest.catalog == run_dir / "ingest" / "catalog.json"
    assert sorted(fingerprint(run_dir, ingest.files())) == sorted(state.steps["ingest"].record.outputs)
    vectors = VectorizeOutput.model_validate(state.steps["vectorize"].record.result)
    assert {s: v.layer.name for s, v in vectors.scenes.items()} == {"scene": "scene.gpkg", "scene-2": "scene-2.gpkg"}
    assert TrainOutput.model_validate(state.steps["train"].record.result).checkpoint == two_scenes / "model.pt"


def test_an_up_to_date_run_starts_no_cluster(two_scenes, clusters):
    summary = _run(two_scenes)
    assert set(_statuses(summary).values()) == {"skipped"}
    assert clusters == []
    assert summary["outputs"]["predict"] == sorted(RunState.load(two_scenes / "run").steps["predict"].record.outputs)


def test_a_record_without_an_output_reruns_its_step(two_scenes):
    """A state written before steps kept their outputs (an older geossl) redoes those steps, nothing breaks."""
    run_dir = two_scenes / "run"
    state = json.loads((run_dir / "state.json").read_text())
    del state["steps"]["report"]["record"]["result"]
    (run_dir / "state.json").write_text(json.dumps(state))
    statuses = _statuses(_run(two_scenes))
    assert statuses.pop("report") == "done" and set(statuses.values()) == {"skipped"}


def test_a_skipped_step_hands_its_recorded_output_to_the_next(two_scenes):
    """Vectorize reads the class raster that predict's record names, not a file name of its own making.

    The record of the (skipped) predict step is pointed at another class raster, every pixel Forest: the
    re-run vectorize step must polygonize that one.
    """
    run_dir = two_scenes / "run"
    original = run_dir / "predict" / "scene_classes.tif"
    forest = run_dir / "elsewhere" / "forest_classes.tif"
    forest.parent.mkdir()
    shutil.copy(original, forest)
    with rasterio.open(forest, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        data = dst.read(1)
        dst.write(np.where(data == dst.nodata, data, 4).astype(data.dtype), 1)
    state = json.loads((run_dir / "state.json").read_text())
    record = state["steps"]["predict"]["record"]
    record["result"]["scenes"]["scene"]["classes"] = str(forest)
    record["outputs"].update(fingerprint(run_dir, [forest]))
    (run_dir / "state.json").write_text(json.dumps(state))

    statuses = _statuses(_run(two_scenes, "--force", "vectorize"))
    assert statuses["predict"] == "skipped" and statuses["vectorize"] == "done"
    layer = pyogrio.read_dataframe(run_dir / "vectors" / "scene.gpkg", layer="scene")
    assert set(layer["class_id"]) == {4}
    other = pyogrio.read_dataframe(run_dir / "vectors" / "scene-2.gpkg", layer="scene-2")
    assert len(set(other["class_id"])) > 1
    assert len(set(read(original)[0].ravel())) > 2  # the file a re-derived name would have read


def test_predict_on_a_shared_cluster_runs_as_many_blocks_at_once_as_on_its_own(tmp_path, clusters):
    """A pipeline's cluster has a thread per core; predict still runs one block at a time there (``workers``)."""
    scene = make_scene(tmp_path / "scene", size=320)
    bundle = make_bundle(patch_size=64, overlap=16)
    model = ModuleModel(SignatureClassifier(bundle).eval())
    options = {"block_width": 256, "threads": 1, "quiet": True}
    predict_with(bundle, model, [scene], PredictOptions(out=tmp_path / "here", scheduler="synchronous", **options))
    with parallel.dask_client(workers=3) as client, get_task_stream(client) as stream:
        (item,) = predict_with(bundle, model, [scene], PredictOptions(out=tmp_path / "shared", **options),
                               client=client)
    assert len(clusters) == 1  # the test's own: predict started none
    assert item["properties"]["geossl:prediction"]["blocks"] == 2
    spans = sorted((s["start"], s["stop"]) for task in stream.data if str(task["key"]).startswith("predict_block")
                   for s in task["startstops"] if s["action"] == "compute")
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans
    for kind in ("classes", "confidence"):
        assert np.array_equal(read(tmp_path / "here" / f"scene_{kind}.tif"),
                              read(tmp_path / "shared" / f"scene_{kind}.tif"))


def test_each_step_is_named_by_its_field_of_steps():
    """The registry (``Steps``' fields) names the steps; a step given a checkpoint by the file keeps its name."""
    from geossl.pipeline.config import STEP_ORDER, load_pipeline

    config = load_pipeline(ROOT / "pipelines" / "zion_cluster.yaml")
    assert config.steps.train.checkpoint is not None and config.steps.train.name == "train"
    names = [step.name for step in config.steps.configured()]
    assert names == [name for name in STEP_ORDER if getattr(config.steps, name) is not None]
    assert names[:2] == ["ingest", "train"] and names[-1] == "report"
