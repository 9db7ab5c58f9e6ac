"""The labelling loop's rounds in a pipeline: a later round of the train step fine-tunes from the one before."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from geossl.models import load_bundle
from tests.conftest import ROOT, run_cli

TINY = {"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8], "patch_size": 64, "batch_size": 2,
        "steps_per_epoch": 2, "max_steps": 2, "threads": 1}


def _pipeline(folder: Path, compress: str, **train) -> Path:
    config = {"name": "rounds", "manifest": str(ROOT / "data_manifests" / "synthetic.yaml"),
              "steps": {"synth": {"size": 256}, "ingest": {"compress": compress}, "train": {**TINY, **train}}}
    path = folder / f"pipeline-{compress}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "state.json").read_text())["steps"]["train"]["record"]["result"]


def test_a_second_round_fine_tunes_from_the_first_and_counts_it(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("run", _pipeline(tmp_path, "zstd"), "--run-dir", run_dir).exit_code == 0
    first = _train_result(run_dir)
    assert first["round"] == 1 and first["fine_tuned_from"] is None and first["labeled"]
    _, round1 = load_bundle(run_dir / "train" / "model.pt")
    # the catalog changes (as when drawn labels are added): the train step runs again, as round 2
    result = run_cli("run", _pipeline(tmp_path, "deflate"), "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    second = _train_result(run_dir)
    previous = run_dir / "train" / "previous" / "model.pt"
    assert second["round"] == 2 and Path(second["fine_tuned_from"]) == previous
    _, kept = load_bundle(previous)
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in round1.state_dict().items())


def test_fine_tune_off_trains_the_next_round_from_scratch(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("run", _pipeline(tmp_path, "zstd", fine_tune=False), "--run-dir", run_dir).exit_code == 0
    assert run_cli("run", _pipeline(tmp_path, "deflate", fine_tune=False), "--run-dir", run_dir).exit_code == 0
    second = _train_result(run_dir)
    assert second["round"] == 2 and second["fine_tuned_from"] is None


def test_a_round_killed_before_it_finished_keeps_its_start_and_its_number(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("run", _pipeline(tmp_path, "zstd"), "--run-dir", run_dir).exit_code == 0
    _, round1 = load_bundle(run_dir / "train" / "model.pt")
    # round 2 was killed while it trained: round 1's model moved aside to start from, none of its own written
    train = run_dir / "train"
    (train / "previous").mkdir()
    (train / "model.pt").replace(train / "previous" / "model.pt")
    (train / "round.txt").write_text("2")
    (train / "pipeline-digest.txt").write_text("the killed round's inputs")
    result = run_cli("run", _pipeline(tmp_path, "deflate"), "--run-dir", run_dir)
    assert result.exit_code == 0, result.output
    redone = _train_result(run_dir)
    assert redone["round"] == 2 and Path(redone["fine_tuned_from"]) == train / "previous" / "model.pt"
    _, kept = load_bundle(train / "previous" / "model.pt")
    assert all(torch.equal(v, kept.state_dict()[k]) for k, v in round1.state_dict().items())
