"""Bad input to `geossl train` / `geossl evaluate`: one line naming the file or flag, exit 2, nothing written."""

import json
import shutil

import pytest
import yaml

from geossl.catalog import load_catalog
from geossl.models import Segmenter, save_bundle
from geossl.train.config import TrainConfig
from geossl.train.run import make_bundle
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = ["--encoder", "tu-test_resnet", "--patch-size", "64", "--batch-size", "2", "--max-steps", "1",
        "--threads", "1"]


def assert_one_line_error(result, *names):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for name in names:
        assert str(name) in lines[0]


def model_file(catalog_dir, path, **bundle_changes):
    """A model bundle for the synthetic catalog (untrained), with some fields changed."""
    config = TrainConfig(encoder="tu-test_resnet", patch_size=64, decoder_channels=[16, 8, 8, 8, 8])
    bundle = make_bundle(config, load_catalog(catalog_dir))
    save_bundle(path, bundle.model_copy(update=bundle_changes), Segmenter(bundle.model))
    return path


@pytest.mark.parametrize(("flags", "named"), [
    (["--strategy", "magic"], "--strategy"),
    (["--encoder", "tu-no_such_encoder_exists"], "--encoder"),
    (["--patch-size", "544"], "--patch-size"),
    (["--patch-size", "100"], "--patch-size"),
    (["--label-fraction", "1.5"], "--label-fraction"),
])
def test_bad_train_options(synth_catalog, tmp_path, flags, named):
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TINY, *flags)
    assert_one_line_error(result, named)
    assert not out.exists()


def test_bad_config_file_is_named(synth_catalog, tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"strategy": "dwl", "learning_rate": 0.1}))
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config)
    assert_one_line_error(result, config, "learning_rate")
    assert not out.exists()


@pytest.mark.parametrize(("content", "named"), [
    ({"decoder_channels": [16, 8]}, "decoder_channels"),
    ({"strategy": {"name": "dwl", "merge_alpha": 2.0}}, "merge_alpha"),
    ({"strategy": {"name": "dwl", "refine": "magic"}}, "unknown refinement 'magic'"),
    ({"strategy": "magic"}, "unknown strategy 'magic'"),
    ({"strategy": {"name": "dwl"}, "strategy_params": {"merge_alpha": 0.2}}, "strategy_params"),
])
def test_bad_model_or_strategy_settings(synth_catalog, tmp_path, content, named):
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"encoder": "tu-test_resnet", "patch_size": 64, **content}))
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config)
    assert_one_line_error(result, named)
    assert not out.exists()


def test_labeled_split_without_labeled_pixels(synth_catalog, tmp_path):
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(synth_catalog, catalog_dir)
    data = json.loads((catalog_dir / "catalog.json").read_text())
    minx, miny, maxx, maxy = data["scenes"][0]["bounds"]
    away = [[maxx + 1000, miny], [maxx + 2000, miny], [maxx + 2000, maxy], [maxx + 1000, maxy], [maxx + 1000, miny]]
    for feature in data["splits"]["features"]:
        if feature["properties"]["split"] == "labeled":
            feature["geometry"] = {"type": "Polygon", "coordinates": [away]}
    (catalog_dir / "catalog.json").write_text(json.dumps(data))
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", catalog_dir, "--out", out, *TINY)
    assert_one_line_error(result, catalog_dir / "catalog.json", "no labeled pixel")
    assert not out.exists()


def test_catalog_of_another_manifest(synth_catalog, tmp_path):
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["classes"][0]["name"] = "Lake"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(manifest))
    out = tmp_path / "run"
    result = run_cli("train", other, "--catalog", synth_catalog, "--out", out, *TINY)
    assert_one_line_error(result, "catalog.json", "classes differ")
    assert not out.exists()


@pytest.mark.parametrize("change", ["classes", "bands"])
def test_evaluate_model_that_does_not_match_the_manifest(synth_catalog, tmp_path, change):
    catalog = load_catalog(synth_catalog)
    if change == "classes":
        classes = [c.model_copy(update={"name": "Lake"}) if c.id == 1 else c for c in catalog.classes]
        path = model_file(synth_catalog, tmp_path / "model.pt", classes=classes)
    else:
        path = model_file(synth_catalog, tmp_path / "model.pt", bands=["b1", "b2", "b3", "b4"])
    out = tmp_path / "eval"
    result = run_cli("evaluate", path, MANIFEST, "--catalog", synth_catalog, "--out", out)
    assert_one_line_error(result, path, "do not match")
    assert not out.exists()


def test_evaluate_a_file_that_is_not_a_checkpoint(synth_catalog, tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"not a checkpoint")
    out = tmp_path / "eval"
    result = run_cli("evaluate", path, MANIFEST, "--catalog", synth_catalog, "--out", out)
    assert_one_line_error(result, path)
    assert not out.exists()


def test_evaluate_an_untrained_matching_model_works(synth_catalog, tmp_path):
    path = model_file(synth_catalog, tmp_path / "model.pt")
    result = run_cli("evaluate", path, MANIFEST, "--catalog", synth_catalog, "--split", "val", "--out",
                     tmp_path / "eval", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["split"] == "val"
