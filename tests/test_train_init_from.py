"""``geossl train --init-from MODEL``: a warm start from a geossl model of the same recipe; its bad input."""

from __future__ import annotations

import pytest
import torch

from geossl.catalog import load_catalog
from geossl.manifest import ClassDef
from geossl.models import Segmenter, load_bundle
from geossl.train.config import TrainConfig
from geossl.train.run import make_bundle
from geossl.train.task import SegmentationTask
from tests.conftest import ROOT, run_cli
from tests.test_train_bad_input import assert_one_line_error, model_file

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = ["--encoder", "tu-test_resnet", "--patch-size", "64", "--batch-size", "2", "--max-steps", "1",
        "--threads", "1", "--decoder-channels", "16", "--decoder-channels", "8", "--decoder-channels", "8",
        "--decoder-channels", "8", "--decoder-channels", "8"]


def _config(**changes):
    return TrainConfig(**{"encoder": "tu-test_resnet", "patch_size": 64, "decoder_channels": [16, 8, 8, 8, 8],
                          **changes})


@pytest.mark.parametrize("strategy", ["fixmatch", {"name": "fixmatch", "teacher": "ema"}])
def test_the_task_starts_from_the_models_weights_and_so_does_its_teacher(synth_catalog, tmp_path, strategy):
    start = model_file(synth_catalog, tmp_path / "start.pt")
    torch.manual_seed(1)  # another initialisation than the file's
    config = _config(strategy=strategy, init_from=start)
    task = SegmentationTask(config.model_dump(mode="json"),
                            make_bundle(config, load_catalog(synth_catalog)).model_dump(mode="json"))
    _, saved = load_bundle(start)
    theirs = saved.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in task.model.state_dict().items())
    fresh = SegmentationTask(_config(strategy=strategy).model_dump(mode="json"),
                             make_bundle(config, load_catalog(synth_catalog)).model_dump(mode="json"))
    assert not all(torch.equal(v, theirs[k]) for k, v in fresh.model.state_dict().items())
    teacher = getattr(task.ssl, "teacher", None)
    if teacher is not None:
        mine = teacher.net.state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(v, mine[k]) for k, v in theirs.items())


def test_a_warm_started_run_trains_and_exports(synth_catalog, tmp_path):
    start = model_file(synth_catalog, tmp_path / "start.pt")
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TINY, "--strategy", "fixmatch",
                     "--init-from", start)
    assert result.exit_code == 0, result.output
    assert load_bundle(out / "model.pt")[0].strategy == "fixmatch"


def _other_classes(catalog):
    classes = load_catalog(catalog).classes
    return [ClassDef(id=c.id, name=f"{c.name}x", color=c.color) for c in classes]


@pytest.mark.parametrize(("change", "named"), [
    ("missing", "not found"),
    ("classes", "classes"),
    ("bands", "bands"),
    ("encoder", "encoder"),
    ("not_a_model", "not a geossl checkpoint"),
])
def test_bad_init_from_is_one_line_and_writes_nothing(synth_catalog, tmp_path, change, named):
    path = tmp_path / "start.pt"
    if change == "classes":
        model_file(synth_catalog, path, classes=_other_classes(synth_catalog))
    elif change == "bands":
        model_file(synth_catalog, path, bands=["a", "b", "c", "d"])
    elif change == "encoder":
        config = _config(encoder="tu-resnet10t")
        bundle = make_bundle(config, load_catalog(synth_catalog))
        from geossl.models import save_bundle

        save_bundle(path, bundle, Segmenter(bundle.model))
    elif change == "not_a_model":
        path.write_bytes(b"not a model")
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TINY, "--strategy", "fixmatch",
                     "--init-from", path)
    assert_one_line_error(result, path, named)
    assert not out.exists()


def test_weights_and_init_from_together_are_refused(synth_catalog, tmp_path):
    start = model_file(synth_catalog, tmp_path / "start.pt")
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TINY, "--init-from", start,
                     "--weights", start)
    assert_one_line_error(result, "--init-from")
    assert not out.exists()
