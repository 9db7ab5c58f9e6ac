"""The gigapixel bench's chain (bench/large_scene.py) at 2048²: synth → ingest → predict → vectorize, each step a
child process, as the bench runs it. Checked without depending on the machine's speed: every output is there and
valid (COGs on the scene's grid, a GeoPackage covering the predicted pixels), prediction streams the scene in
column blocks that each run only their own windows, and every step's peak RSS stays under a generous cap."""

from __future__ import annotations

import math

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely

from bench import large_scene
from geossl.windows import WindowGrid, column_blocks

SIZE = 2048
BLOCK_WIDTH = 512  # four column blocks
PATCH, OVERLAP = 256, 64  # the bench's network's windows
#: Peak RSS of any step here (an interpreter with torch, Dask and GDAL loaded is about 1 GiB of it).
RSS_CAP_MIB = 2500


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return large_scene.chain(SIZE, tmp_path_factory.mktemp("large_scene"), block_width=BLOCK_WIDTH)


def test_every_step_and_the_floor_ran_as_a_child_and_was_measured(run):
    assert set(run["steps"]) == set(large_scene.STEPS)
    parts = run["floor"]["parts"]
    assert set(parts) == {"read", "write_classes", "write_confidence"}
    for figures in [*run["steps"].values(), *parts.values()]:
        assert figures["seconds"] > 0
        assert 0 < figures["peak_rss_mib"] < RSS_CAP_MIB
    # predict's child loads torch: its peak is the child's, not the small wrapper's nor the test process's
    assert run["steps"]["predict"]["peak_rss_mib"] > 3 * parts["write_classes"]["peak_rss_mib"]
    assert math.isclose(run["floor"]["seconds"], sum(p["seconds"] for p in parts.values()), abs_tol=0.05)
    targets = {t["target"] for t in large_scene.targets([run])}
    assert f"predict wall / I/O floor at {SIZE}²" in targets and len(targets) == 4


def _cog(path: str) -> rasterio.DatasetReader:
    src = rasterio.open(path)
    assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.profile["tiled"] and src.overviews(1)
    return src


def test_outputs_are_cogs_on_the_scenes_grid(run):
    files = run["files"]
    with _cog(files["image"]) as image:
        assert (image.width, image.height, image.count, image.dtypes[0]) == (SIZE, SIZE, 4, "uint16")
        grid = (image.crs, image.transform)
    for name in ("classes", "confidence"):
        for path in (files[name], run["floor"]["files"][name]):  # predict's and the floor's copy
            with _cog(path) as out:
                assert (out.crs, out.transform) == grid and (out.width, out.height, out.count) == (SIZE, SIZE, 1)
                assert out.dtypes[0] == "uint8"


def test_predict_streams_the_scene_in_column_blocks_of_their_own_windows(run):
    grid = WindowGrid(SIZE, SIZE, PATCH, OVERLAP)
    blocks = column_blocks(grid, BLOCK_WIDTH)
    pred = run["prediction"]
    assert pred["blocks"] == len(blocks) == 4 and pred["windows"] == len(grid)
    # each block runs the window columns reaching into it and no more: one shared column per border at most
    per_block = [len(grid.col_starts_between(c0, c1)) * len(grid.row_starts) for c0, c1 in blocks]
    assert pred["windows_run"] + pred["windows_skipped_nodata"] == sum(per_block)
    assert sum(per_block) <= len(grid) + (len(blocks) - 1) * len(grid.row_starts)
    assert pred["windows_run"] > 0


def test_the_tiny_network_maps_the_scene_and_the_polygons_cover_it(run):
    with rasterio.open(run["files"]["classes"]) as src:
        classes, nodata = src.read(1), src.nodata
        pixel_area = abs(src.transform.a * src.transform.e)
        bounds = src.bounds
    with rasterio.open(run["files"]["labels"]) as src:
        labels = src.read(1)
    valid = classes != nodata
    assert np.array_equal(valid, labels != 0)
    assert (classes[valid] == labels[valid]).mean() > 0.8  # the scene's structure, not an untrained net's speckle
    frame = pyogrio.read_dataframe(run["files"]["polygons"], layer="polygons")
    assert len(frame) == run["polygons"] > 0
    assert set(frame["class_id"]) <= set(np.unique(classes[valid]).tolist())
    area = shapely.area(frame.geometry.values).sum()
    assert area == pytest.approx(valid.sum() * pixel_area, rel=0.01)
    minx, miny, maxx, maxy = frame.total_bounds
    assert bounds.left <= minx < maxx <= bounds.right and bounds.bottom <= miny < maxy <= bounds.top
