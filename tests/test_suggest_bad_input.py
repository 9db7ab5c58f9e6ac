"""``geossl suggest`` refuses bad input with one line and exit code 2, and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geossl.manifest import ClassDef
from geossl.models import ModelConfig
from tests.conftest import ROOT, run_cli
from tests.predict_support import classes, make_bundle, save_checkpoint

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Genuine (untrained) checkpoints: one that fits the synthetic manifest, one with other classes, other bands."""
    folder = tmp_path_factory.mktemp("suggest_ckpt")
    good = make_bundle(patch_size=64, overlap=16)
    fewer = good.model_copy(update={"classes": classes()[:5], "model": ModelConfig(
        arch="unet", encoder="tu-resnet10t", in_channels=4, num_classes=5)})
    renamed = good.model_copy(update={"classes": [ClassDef(id=c.id, name=f"{c.name}s", color=c.color)
                                                  for c in classes()]})
    bands = good.model_copy(update={"bands": ["b2", "b3", "b4", "b5"]})
    return {name: save_checkpoint(folder / f"{name}.pt", bundle)
            for name, bundle in (("good", good), ("fewer", fewer), ("renamed", renamed), ("bands", bands))}


def _moved(synth_catalog: Path, folder: Path, split: str, to: str) -> Path:
    """A copy of the synthetic catalog in ``folder`` with the blocks of ``split`` moved to split ``to``."""
    shutil.copytree(synth_catalog, folder)
    catalog = json.loads((folder / "catalog.json").read_text())
    for feature in catalog["splits"]["features"]:
        if feature["properties"]["split"] == split:
            feature["properties"]["split"] = to
    (folder / "catalog.json").write_text(json.dumps(catalog))
    return folder


@pytest.fixture(scope="module")
def no_unlabeled(synth_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic catalog with its unlabeled blocks made labeled."""
    return _moved(synth_catalog, tmp_path_factory.mktemp("no_unlabeled") / "catalog", "unlabeled", "labeled")


@pytest.fixture(scope="module")
def no_labeled(synth_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic catalog with its labeled blocks made unlabeled."""
    return _moved(synth_catalog, tmp_path_factory.mktemp("no_labeled") / "catalog", "labeled", "unlabeled")


def _refused(tmp_path: Path, checkpoint: Path, catalog: Path, *extra: str) -> str:
    """Run suggest into ``tmp_path/out``; check exit 2, one line, nothing written; return the line."""
    out = tmp_path / "out" / "next.gpkg"
    result = run_cli("suggest", checkpoint, MANIFEST, "--catalog", catalog, "--out", out, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == []
    return lines[0].removeprefix("Error: ")


@pytest.mark.parametrize("which", ["fewer", "renamed"])
def test_a_checkpoint_of_other_classes(checkpoints, synth_catalog, tmp_path, which):
    line = _refused(tmp_path, checkpoints[which], synth_catalog)
    assert line.startswith(f"{checkpoints[which]}: model classes") and "do not match manifest" in line


def test_a_checkpoint_of_other_bands(checkpoints, synth_catalog, tmp_path):
    line = _refused(tmp_path, checkpoints["bands"], synth_catalog)
    assert line.startswith(f"{checkpoints['bands']}: model bands ['b2', 'b3', 'b4', 'b5'] do not match")


def test_a_catalog_without_an_unlabeled_split(checkpoints, no_unlabeled, tmp_path):
    line = _refused(tmp_path, checkpoints["good"], no_unlabeled)
    assert line == f"{no_unlabeled / 'catalog.json'}: the catalog has no unlabeled split: there is nothing to " \
                   "suggest labels for"


def test_novelty_on_a_catalog_without_labeled_pixels(checkpoints, no_labeled, tmp_path):
    """The default method and balanced class weights need labeled pixels; entropy and typical windows need none."""
    line = _refused(tmp_path, checkpoints["good"], no_labeled)
    assert line.startswith(f"{no_labeled / 'catalog.json'}: the labeled split holds no labeled pixel")
    assert line.endswith("; --method novelty measures against the labeled pixels")
    (tmp_path / "balanced").mkdir()
    line = _refused(tmp_path / "balanced", checkpoints["good"], no_labeled, "--method", "entropy",
                    "--class-weighting", "balanced")
    assert line.endswith("labeled pixel (every label there is the ignore id 0 or the split is empty); "
                         "--class-weighting balanced weighs by the labeled pixels")
    out = tmp_path / "entropy.gpkg"
    result = run_cli("suggest", checkpoints["good"], MANIFEST, "--catalog", no_labeled, "--out", out, "--n", 2,
                     "--method", "entropy", "--threads", 1)
    assert result.exit_code == 0, result.output
    typical = run_cli("suggest", checkpoints["good"], MANIFEST, "--catalog", no_labeled, "--out", tmp_path / "t.gpkg",
                      "--n", 2, "--ranking", "typical", "--threads", 1)
    assert typical.exit_code == 0, typical.output


def test_no_window_asked_for(checkpoints, synth_catalog, tmp_path):
    assert _refused(tmp_path, checkpoints["good"], synth_catalog, "--n", "0") == "--n: must be at least 1"


def test_a_window_larger_than_the_scene(checkpoints, synth_catalog, tmp_path):
    line = _refused(tmp_path, checkpoints["good"], synth_catalog, "--size", "1024")
    assert line == "--size: a window of 1024 px is larger than the scene scene.tif (512 x 512 px)"


def test_a_window_off_the_candidate_grid(checkpoints, synth_catalog, tmp_path):
    assert _refused(tmp_path, checkpoints["good"], synth_catalog, "--size", "60") == "--size: must be a multiple of 8"


def test_a_window_that_fits_no_unlabeled_area(checkpoints, synth_catalog, tmp_path):
    line = _refused(tmp_path, checkpoints["good"], synth_catalog, "--size", "256")
    assert line == "--size: no window of 256 x 256 px fits inside the unlabeled area; try a smaller --size"


def test_an_output_that_is_not_a_geopackage(checkpoints, synth_catalog, tmp_path):
    out = tmp_path / "next.shp"
    result = run_cli("suggest", checkpoints["good"], MANIFEST, "--catalog", synth_catalog, "--out", out)
    assert result.exit_code == 2 and "must end in .gpkg" in result.stderr
    assert not out.exists()
