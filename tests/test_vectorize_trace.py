"""The pure parts of vectorize: tracing, ragged arrays, R-tree packing, sieve threshold, names, tiling."""

import sqlite3
import threading

import numpy as np
import pytest
import rasterio.features
import shapely
from rasterio.crs import CRS

from geossl.parallel import dask_client, ordered_results
from geossl.vectorize.ragged import RaggedPolygons
from geossl.vectorize.rtree import bulk_load, outward_float32
from geossl.vectorize.source import area_field, min_area_pixels
from geossl.vectorize.trace import label_regions, trace
from geossl.windows import Tiling, partition


def _polygons(values, valid=None, halo=None):
    valid = np.ones(values.shape, bool) if valid is None else valid
    regions = label_regions(values, valid)
    rings = trace(regions, halo)
    return rings.polygons.geometries(), regions.value[rings.label], regions.count[rings.label]


def _assert_same_as_gdal(values, valid):
    geoms, value, _ = _polygons(values, valid)
    ref = [(shapely.geometry.shape(g), v) for g, v in
           rasterio.features.shapes(values.astype(np.int32), mask=valid, connectivity=4)]
    assert len(geoms) == len(ref)
    assert shapely.is_valid(geoms).all()
    ref_geoms = np.array([g for g, _ in ref])
    ref_value = np.array([v for _, v in ref])
    mine, theirs = shapely.STRtree(ref_geoms).query(shapely.point_on_surface(geoms), predicate="within")
    assert sorted(theirs.tolist()) == list(range(len(ref)))
    assert shapely.equals(geoms[mine], ref_geoms[theirs]).all()
    assert (value[mine] == ref_value[theirs]).all()


def test_one_pixel_is_a_unit_square():
    geoms, value, count = _polygons(np.array([[0, 0, 0], [0, 5, 0], [0, 0, 0]]), np.array(
        [[0, 0, 0], [0, 1, 0], [0, 0, 0]], bool))
    assert len(geoms) == 1 and value[0] == 5 and count[0] == 1
    assert shapely.equals(geoms[0], shapely.box(1, 1, 2, 2))
    assert shapely.get_coordinates(geoms[0]).tolist() == [[1, 1], [2, 1], [2, 2], [1, 2], [1, 1]]


def test_hole_and_diagonal_pinch():
    # Class 1 is a ring around a 2; class 3 touches itself diagonally at one corner (a pinch).
    values = np.array([[1, 1, 1, 3],
                       [1, 2, 1, 3],
                       [1, 1, 3, 3],
                       [3, 3, 3, 3]])
    values[2, 2] = 3
    geoms, value, count = _polygons(values)
    by_value = dict(zip(value.tolist(), geoms, strict=True))
    assert shapely.get_num_interior_rings(by_value[1]) == 1
    assert by_value[1].area == 7 and by_value[2].area == 1  # the hole touches the shell at (2, 2)
    assert (count == shapely.area(geoms)).all()
    _assert_same_as_gdal(values, np.ones(values.shape, bool))
    # A pinch of the same component: the enclosed cell becomes a hole touching the shell, which is valid.
    pinch = np.array([[1, 1, 1, 0], [1, 0, 1, 0], [1, 1, 0, 1], [0, 0, 1, 1]]) + 1
    _assert_same_as_gdal(pinch, np.ones(pinch.shape, bool))


@pytest.mark.parametrize("seed", range(12))
def test_random_rasters_equal_gdal_polygonize(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 4, (int(rng.integers(1, 40)), int(rng.integers(1, 40))))
    valid = rng.random(values.shape) > 0.2
    _assert_same_as_gdal(values, valid)


def test_halo_makes_neighbouring_tiles_edge_matched():
    rng = np.random.default_rng(5)
    values = rng.integers(1, 3, (20, 40))
    left, right = values[:, :20], values[:, 20:]
    halo_left = np.zeros((22, 22), np.int32)
    halo_left[1:-1, -1] = -values[:, 20]
    halo_right = np.zeros((22, 22), np.int32)
    halo_right[1:-1, 0] = -values[:, 19]
    g_left, _, _ = _polygons(left, halo=halo_left)
    g_right, _, _ = _polygons(right, halo=halo_right)
    g_right = shapely.transform(g_right, lambda xy: xy + [20, 0])
    assert shapely.coverage_is_valid(np.concatenate([g_left, g_right]))
    without, _, _ = _polygons(left)  # no halo: the border is one straight run, not matched
    assert not shapely.coverage_is_valid(np.concatenate([without, g_right]))


def test_ragged_wkb_bounds_and_subsets_match_shapely():
    values = np.random.default_rng(2).integers(1, 4, (30, 25))
    rings = trace(label_regions(values, np.ones(values.shape, bool)))
    polys = rings.polygons.shifted(3, 4).transformed((30.0, 0.0, 1000.0, 0.0, -30.0, 9000.0))
    geoms = polys.geometries()
    assert polys.wkb().tolist() == shapely.to_wkb(geoms, byte_order=1, flavor="iso").tolist()
    np.testing.assert_array_equal(polys.bounds(), shapely.bounds(geoms))
    some = np.arange(len(polys)) % 3 == 1
    assert shapely.equals(polys.take(some).geometries(), geoms[some]).all()
    empty = polys.take(np.zeros(len(polys), bool))
    assert len(empty) == 0 and len(empty.wkb()) == 0
    assert isinstance(empty, RaggedPolygons)


@pytest.mark.parametrize("n", [0, 1, 51, 52, 5000])
def test_packed_rtree_is_valid_and_answers_queries(n):
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE r USING rtree(id, minx, maxx, miny, maxy)")
    rng = np.random.default_rng(n)
    lo = rng.random((n, 2)) * 1000
    boxes = np.hstack([lo, lo + rng.random((n, 2)) * 10])
    ids = rng.permutation(n) + 1
    bulk_load(db, "r", ids, outward_float32(boxes))
    assert db.execute("SELECT rtreecheck('r')").fetchone()[0] == "ok"
    assert db.execute("SELECT count(*) FROM r").fetchone()[0] == n
    got = sorted(r[0] for r in db.execute("SELECT id FROM r WHERE maxx >= 400 AND minx <= 420 AND maxy >= 300 "
                                          "AND miny <= 330"))
    hit = (boxes[:, 2] >= 400) & (boxes[:, 0] <= 420) & (boxes[:, 3] >= 300) & (boxes[:, 1] <= 330)
    assert got == sorted(ids[hit].tolist())


def test_outward_rounding_contains_the_box():
    b = np.array([[0.1, 0.2, 500000.123456789, 5100000.987654321]])
    r = outward_float32(b).astype(np.float64)
    assert (r[:, :2] <= b[:, :2]).all() and (r[:, 2:] >= b[:, 2:]).all()


def test_min_area_pixels():
    assert min_area_pixels(0, 100) == 0
    assert min_area_pixels(900, 900) == 1          # one 30 m pixel: nothing is smaller
    assert min_area_pixels(2700, 900) == 3         # exactly 3 pixels: 3-pixel regions are kept
    assert min_area_pixels(2701, 900) == 4
    assert min_area_pixels(0.3 * 3, 0.3) == 3      # rounding of an exact multiple is absorbed
    assert min_area_pixels(1, 100) == 1


def test_area_field_names():
    assert area_field(CRS.from_epsg(32633)) == "area_m2"
    assert area_field(CRS.from_epsg(4326)) == "area_deg2"
    assert area_field(CRS.from_epsg(2264)) == "area_ftus2"  # NC State Plane, US survey feet


def test_tiling_is_a_partition():
    assert partition(10, 4) == [(0, 4), (4, 8), (8, 10)]
    tiling = Tiling(10, 7, 4, 3)
    seen = np.zeros((10, 7), int)
    for i, j in tiling:
        w = tiling.tile(i, j)
        seen[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert (seen == 1).all() and len(tiling) == 9
    halo = tiling.with_halo(tiling.tile(0, 2), 2)
    assert (halo.row_off, halo.col_off, halo.height, halo.width) == (0, 4, 6, 3)



_IN_FLIGHT = {"running": 0, "most": 0}
_LOCK = threading.Lock()
_DONE = [threading.Event() for _ in range(20)]
_FINISHED: list[int] = []


def _square_after_the_next(x):
    """Even tasks finish only after the next (odd) one: results come back out of order, without timing."""
    with _LOCK:
        _IN_FLIGHT["running"] += 1
        _IN_FLIGHT["most"] = max(_IN_FLIGHT["most"], _IN_FLIGHT["running"])
    # the next task is always submitted while this one waits (3 in flight, 4 threads); the wait bounds a bug
    if x % 2 == 0 and x + 1 < len(_DONE) and not _DONE[x + 1].wait(120):
        raise RuntimeError(f"task {x + 1} never ran while task {x} waited for it")
    with _LOCK:
        _IN_FLIGHT["running"] -= 1
        _FINISHED.append(x)
    _DONE[x].set()
    return x * x


def test_ordered_results_keep_order_and_bound_the_tasks_in_flight():
    with dask_client(None, 4) as client:
        out = list(ordered_results(client, _square_after_the_next, range(20), max_in_flight=3, desc="t",
                                   quiet=True))
    assert out == [x * x for x in range(20)]
    assert all(_FINISHED.index(x + 1) < _FINISHED.index(x) for x in range(0, 20, 2))  # finished out of order
    assert 2 <= _IN_FLIGHT["most"] <= 3
