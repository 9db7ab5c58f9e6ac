"""Every bad input of the ingest issue: exit code 2, one line naming the file or field, nothing left behind."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from tests.conftest import run_cli


@pytest.fixture
def case(synth_dir, tmp_path):
    """A copy of the synthetic inputs to break, and an output folder that must stay absent."""
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    return src, tmp_path / "out"


def _manifest(src: Path) -> dict:
    return yaml.safe_load((src / "manifest.yaml").read_text())


def _save(src: Path, manifest: dict) -> None:
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))


def _assert_refused(src: Path, out: Path, pattern: str, *extra: str) -> None:
    result = run_cli("ingest", src / "manifest.yaml", "--out", out, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert pattern in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".out")], "staging left behind"


def test_not_a_raster(case):
    src, out = case
    (src / "scene.tif").write_text("this is not an image\n")
    _assert_refused(src, out, "scene.tif: not a raster")


def test_truncated_geotiff(case):
    src, out = case
    data = (src / "scene.tif").read_bytes()
    (src / "scene.tif").write_bytes(data[: len(data) // 2])
    _assert_refused(src, out, "scene.tif: truncated GeoTIFF")


def test_corrupt_geotiff(case):
    src, out = case
    data = bytearray((src / "scene.tif").read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) // 3
    data[start : start + len(data) // 3] = rng.integers(0, 256, len(data) // 3, dtype=np.uint8).tobytes()
    (src / "scene.tif").write_bytes(bytes(data))
    _assert_refused(src, out, "scene.tif: cannot read imagery")


def test_raster_without_crs(case):
    src, out = case
    with rasterio.open(src / "scene.tif") as s:
        profile, data = s.profile, s.read()
    profile.pop("crs")
    with rasterio.open(src / "nocrs.tif", "w", **profile) as d:
        d.write(data)
    m = _manifest(src)
    m["imagery"]["paths"] = ["nocrs.tif"]
    _save(src, m)
    _assert_refused(src, out, "nocrs.tif: imagery has no CRS")


def test_scenes_with_different_band_counts(case):
    src, out = case
    with rasterio.open(src / "scene.tif") as s:
        profile, data = s.profile, s.read()
    profile["count"] = 3
    with rasterio.open(src / "three.tif", "w", **profile) as d:
        d.write(data[:3])
    m = _manifest(src)
    m["imagery"]["paths"] = ["scene.tif", "three.tif"]
    _save(src, m)
    _assert_refused(src, out, "three.tif: has 3 bands but scene.tif has 4")


def test_label_ids_not_in_class_list(case):
    src, out = case
    with rasterio.open(src / "labels.tif", "r+") as lab:
        data = lab.read(1)
        data[100:110, 200:210] = 9
        lab.write(data, 1)
    _assert_refused(src, out, "labels.tif: label ids [9] are not in the class list")


def test_labels_that_do_not_overlap_the_imagery(case):
    src, out = case
    with rasterio.open(src / "labels.tif") as s:
        profile, data = s.profile, s.read()
    profile["transform"] = profile["transform"] @ rasterio.Affine.translation(100000, 0)
    with rasterio.open(src / "far.tif", "w", **profile) as d:
        d.write(data)
    m = _manifest(src)
    m["labels"]["rasters"] = ["far.tif"]
    _save(src, m)
    _assert_refused(src, out, "far.tif: labels do not overlap any imagery scene")


def test_empty_glob(case):
    src, out = case
    m = _manifest(src)
    m["imagery"]["paths"] = ["tiles/*.tif"]
    _save(src, m)
    _assert_refused(src, out, "tiles/*.tif: no files match")


def test_manifest_with_missing_field(case):
    src, out = case
    m = _manifest(src)
    del m["classes"]
    _save(src, m)
    _assert_refused(src, out, "manifest.yaml: field 'classes': required field is missing")


def test_manifest_with_mistyped_field(case):
    src, out = case
    m = _manifest(src)
    m["splits"]["blocks"]["rows"] = "eight"
    _save(src, m)
    _assert_refused(src, out, "field 'splits.blocks.rows'")


def test_path_escaping_data_root(case):
    src, out = case
    m = _manifest(src)
    m["imagery"]["paths"] = ["../../etc/passwd"]
    _save(src, m)
    _assert_refused(src, out, "../../etc/passwd: path escapes the data root", "--data-root", str(src))


def test_failed_reingest_leaves_previous_outputs_untouched(case):
    src, out = case
    assert run_cli("ingest", src / "manifest.yaml", "--out", out).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with rasterio.open(src / "labels.tif", "r+") as lab:
        data = lab.read(1)
        data[0:5, 0:5] = 42
        lab.write(data, 1)
    result = run_cli("ingest", src / "manifest.yaml", "--out", out)
    assert result.exit_code == 2 and "label ids [42]" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
