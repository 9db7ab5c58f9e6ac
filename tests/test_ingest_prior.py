"""The manifest's ``prior:``: warped onto the imagery's grid, ids mapped to the classes; bad priors refused."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.transform import Affine

from tests.conftest import run_cli

MAPPING = {10 * k + 1: k for k in range(1, 7)}  # the prior's ids 11, 21, ... 61 → classes 1 ... 6


@pytest.fixture
def case(synth_dir, tmp_path):
    """A copy of the synthetic inputs with a prior at half the resolution, in ids of its own, nodata 255."""
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    with rasterio.open(src / "labels.tif") as lab:
        labels, profile = lab.read(1), lab.profile
    coarse = labels[::2, ::2]
    prior = np.where(coarse > 0, coarse * 10 + 1, 255).astype("uint8")
    t = profile["transform"]
    profile.update(width=coarse.shape[1], height=coarse.shape[0], nodata=255,
                   transform=Affine(t.a * 2, 0, t.c, 0, t.e * 2, t.f), tiled=False)
    profile.pop("blockxsize", None)
    profile.pop("blockysize", None)
    with rasterio.open(src / "prior.tif", "w", **profile) as out:
        out.write(prior, 1)
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["prior"] = {"rasters": ["prior.tif"], "classes": MAPPING}
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    return src, tmp_path / "out"


def test_prior_on_a_coarser_grid_is_warped_and_mapped(case):
    src, out = case
    result = run_cli("ingest", src / "manifest.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    scene = json.loads((out / "catalog.json").read_text())["scenes"][0]
    assert scene["prior"] == "priors/scene.tif"
    with rasterio.open(out / scene["image"]) as image, rasterio.open(out / scene["prior"]) as prior, \
            rasterio.open(out / scene["labels"]) as labels:
        assert (prior.crs, prior.transform, prior.shape) == (image.crs, image.transform, image.shape)
        assert prior.nodata == 0
        mapped, truth = prior.read(1), labels.read(1)
    assert set(np.unique(mapped).tolist()) <= {0, 1, 2, 3, 4, 5, 6}
    # each prior pixel covers 2 x 2 label pixels: the top-left one of each is its source, exactly
    assert np.array_equal(mapped[::2, ::2], truth[::2, ::2])
    assert (mapped == truth).mean() > 0.8
    assert (out / "priors" / "scene.qml").is_file()


def _refused(src: Path, out: Path, pattern: str) -> str:
    result = run_cli("ingest", src / "manifest.yaml", "--out", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and pattern in lines[0], result.stderr
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out")], "staging left behind"
    return lines[0]


def test_prior_with_unmapped_ids_is_refused(case):
    src, out = case
    with rasterio.open(src / "prior.tif", "r+") as prior:
        data = prior.read(1)
        data[5:8, 5:8], data[20, 20] = 77, 99
        prior.write(data, 1)
    _refused(src, out, "prior.tif: prior class ids [77, 99] are not in prior.classes")


def test_prior_mapping_to_an_unknown_class_is_refused(case):
    src, out = case
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["prior"]["classes"][11] = 9
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    _refused(src, out, "prior.classes maps to [9]")


def test_prior_that_does_not_overlap_the_imagery_is_refused(case):
    src, out = case
    with rasterio.open(src / "prior.tif") as prior:
        data, profile = prior.read(1), prior.profile
    t = profile["transform"]
    profile.update(transform=Affine(t.a, 0, t.c + 1e6, 0, t.e, t.f))
    with rasterio.open(src / "prior.tif", "w", **profile) as far:
        far.write(data, 1)
    assert "prior.tif: " in _refused(src, out, "do not overlap any imagery scene")
