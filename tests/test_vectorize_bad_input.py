"""Every bad input of the vectorize issue: exit code 2, one line naming the file or option, nothing left behind."""

import numpy as np
import pytest
import rasterio

from tests.conftest import run_cli, unwritable_folder
from tests.vectorize_helpers import speckled, write_classes


@pytest.fixture
def good(tmp_path):
    return write_classes(tmp_path / "classes.tif", speckled(48, seed=0))


def _refused(tmp_path, src, out, pattern, *extra):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli("vectorize", src, "--out", out, *extra)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and pattern in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "partial output or staging left behind"


def test_not_a_raster(tmp_path):
    src = tmp_path / "notes.tif"
    src.write_text("not an image\n")
    _refused(tmp_path, src, tmp_path / "out.gpkg", f"{src}: not a raster")


def test_missing_file(tmp_path):
    _refused(tmp_path, tmp_path / "nope.tif", tmp_path / "out.gpkg", "nope.tif: no such file")


def test_float_raster(tmp_path):
    src = write_classes(tmp_path / "prob.tif", np.random.default_rng(0).random((32, 32)).astype(np.float32))
    _refused(tmp_path, src, tmp_path / "out.gpkg", f"{src}: is a float32 raster")


def test_raster_without_crs(tmp_path):
    src = write_classes(tmp_path / "nocrs.tif", speckled(32, seed=1), crs=None)
    _refused(tmp_path, src, tmp_path / "out.gpkg", f"{src}: has no CRS")


def test_multiband_raster(tmp_path):
    src = tmp_path / "rgb.tif"
    with rasterio.open(src, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(0, 80, 10, 10)) as dst:
        dst.write(np.ones((3, 8, 8), np.uint8))
    _refused(tmp_path, src, tmp_path / "out.gpkg", f"{src}: has 3 bands")


def test_unknown_format(tmp_path, good):
    _refused(tmp_path, good, tmp_path / "out.gpkg", "--format: unknown format 'shp'", "--format", "shp")


@pytest.mark.parametrize(("flag", "value", "problem"), [
    ("--simplify", "-5", "must be zero or positive"),
    ("--simplify", "nan", "must be a finite number"),
    ("--simplify", "inf", "must be a finite number"),
    ("--min-area", "-1", "must be zero or positive"),
    ("--min-area", "nan", "must be a finite number"),
])
def test_a_negative_or_not_finite_tolerance(tmp_path, good, flag, value, problem):
    _refused(tmp_path, good, tmp_path / "out.gpkg", f"{flag}: {problem}", f"{flag}={value}")


def test_unknown_suffix(tmp_path, good):
    _refused(tmp_path, good, tmp_path / "out.shp", "out.shp: cannot tell the format from the suffix '.shp'")


def test_output_exists_without_overwrite(tmp_path, good):
    out = tmp_path / "out.gpkg"
    out.write_bytes(b"precious")
    _refused(tmp_path, good, out, f"{out}: already exists; use --overwrite")
    assert out.read_bytes() == b"precious"
    result = run_cli("vectorize", good, "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:16] == b"SQLite format 3\x00"


def test_confidence_on_another_grid(tmp_path, good):
    conf = write_classes(tmp_path / "conf.tif", np.ones((20, 20), np.float32), classes=None)
    _refused(tmp_path, good, tmp_path / "out.gpkg", f"{conf}: is not on the class raster's grid",
             "--confidence", conf)


def test_bad_class_metadata(tmp_path):
    src = write_classes(tmp_path / "meta.tif", speckled(32, seed=2), classes=[{"id": 1, "name": "x"}])
    _refused(tmp_path, src, tmp_path / "out.gpkg", f"{src}: band metadata 'classes' is not a JSON list")


def test_negative_min_area(tmp_path, good):
    _refused(tmp_path, good, tmp_path / "out.gpkg", "--min-area: must be zero or positive", "--min-area", "-5")


def test_output_in_an_unwritable_folder(tmp_path, good):
    folder = unwritable_folder(tmp_path)
    before = sorted(folder.iterdir())
    for out in (folder / "out.gpkg", folder / "new" / "out.gpkg"):
        result = run_cli("vectorize", good, "--out", out)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{out}: output folder is not writable" in lines[0], result.stderr
    assert sorted(folder.iterdir()) == before
    if folder.is_relative_to(tmp_path):
        folder.chmod(0o755)
