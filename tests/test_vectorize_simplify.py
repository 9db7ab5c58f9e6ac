"""Coverage simplification in tiles (geossl.vectorize.simplify): one valid coverage, close to a whole-scene pass."""

import numpy as np
import pyogrio
import pytest
import shapely

from geossl.vectorize.run import VectorizeOptions, vectorize
from geossl.vectorize.simplify import fixed_vertices, simplify_coverage, simplify_piece, trace_with_outside
from geossl.vectorize.tile import _halo_codes, _off_raster
from geossl.vectorize.trace import label_regions, trace
from tests.vectorize_helpers import speckled, write_classes

TOLERANCE = 15.0  # m, on 10 m pixels: staircase corners (50 m²) go, so there is plenty to simplify


def _run(src, out, tile, simplify):
    vectorize(src, VectorizeOptions(out=out, quiet=True, workers=2, tile_pixels=tile * tile, simplify=simplify))
    return pyogrio.read_dataframe(out, layer=out.stem)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A speckled map with a nodata hole across tile borders, vectorized plain, simplified whole and in tiles."""
    tmp = tmp_path_factory.mktemp("simplify")
    data = speckled(160, seed=7)
    rows, cols = np.indices(data.shape)
    data[(abs(rows - cols + 20) < 4) & (rows > 40) & (rows < 120)] = 0  # a diagonal band: a staircase boundary
    src = write_classes(tmp / "scene.tif", data)
    plain = _run(src, tmp / "plain.gpkg", 1024, 0.0)
    whole = _run(src, tmp / "whole.gpkg", 1024, TOLERANCE)  # one tile: the whole coverage at once
    tiled = _run(src, tmp / "tiled.gpkg", 32, TOLERANCE)  # 25 tiles of 32 x 32 px
    return plain, whole, tiled


def _class_difference(geoms_a, class_a, geoms_b, class_b):
    """Area where two coverages disagree on the class."""
    return sum(shapely.symmetric_difference(shapely.union_all(geoms_a[class_a == c]),
                                            shapely.union_all(geoms_b[class_b == c])).area
               for c in np.union1d(class_a, class_b))


def test_one_tile_is_the_whole_coverage_simplification(scene):
    plain, whole, _ = scene
    expected = shapely.coverage_simplify(plain.geometry.values, TOLERANCE)
    assert shapely.equals(whole.geometry.values, expected).all()
    np.testing.assert_allclose(whole.area_m2, shapely.area(expected), rtol=1e-12)


def test_tiles_give_one_valid_coverage_close_to_the_whole(scene):
    plain, whole, tiled = scene
    geoms = tiled.geometry.values
    assert abs(len(tiled) - len(whole)) <= 0.03 * len(whole)
    assert shapely.is_valid(geoms).all() and set(shapely.get_type_id(geoms).tolist()) == {3}
    assert shapely.coverage_is_valid(geoms, gap_width=5.0)  # edge-matched, no overlap, no gap narrower than 5 m
    union = shapely.union_all(geoms)
    assert abs(union.area - shapely.area(geoms).sum()) <= 1e-6 * union.area  # no overlap
    nodata = shapely.polygons(shapely.get_interior_ring(shapely.union_all(plain.geometry.values), 0))
    holes = shapely.polygons(shapely.get_rings(union)[1:])
    assert len(holes) == 1 and shapely.intersects(holes[0], nodata)  # no gap: the one hole is the nodata band
    # The outer boundary (here the nodata band's staircase) is simplified as in the whole-coverage pass.
    whole_union = shapely.union_all(whole.geometry.values)
    assert union.symmetric_difference(whole_union).area < 0.5 * nodata.symmetric_difference(
        shapely.polygons(shapely.get_interior_ring(whole_union, 0))).area
    # Simplified: every vertex is one of the unsimplified boundary's, and many are gone.
    boundary = shapely.union_all(shapely.boundary(plain.geometry.values))
    assert shapely.distance(shapely.points(shapely.get_coordinates(geoms)), boundary).max() < 1e-6
    n_vertices = shapely.get_num_coordinates(geoms).sum()
    assert n_vertices < 0.8 * shapely.get_num_coordinates(plain.geometry.values).sum()
    assert n_vertices <= 1.1 * shapely.get_num_coordinates(whole.geometry.values).sum()
    np.testing.assert_allclose(tiled.area_m2, shapely.area(geoms), rtol=1e-12)
    # As close to the whole-coverage result as the whole-coverage result is to itself with its input reordered
    # (ties between equal triangles, everywhere on pixel staircases, go by input order).
    order = np.random.default_rng(0).permutation(len(plain))
    reordered = shapely.coverage_simplify(plain.geometry.values[order], TOLERANCE)
    noise = _class_difference(whole.geometry.values, whole.class_id.values, reordered,
                              plain.class_id.values[order])
    ours = _class_difference(whole.geometry.values, whole.class_id.values, geoms, tiled.class_id.values)
    assert 0 < ours <= 2 * noise


def _tile(values, valid, r, c, h, w):
    """What a tile task sees: the window at (r, c) of size (h, w), read with a one-pixel halo."""
    r0, c0 = min(r, 1), min(c, 1)
    read = (slice(r - r0, r + h + 1), slice(c - c0, c + w + 1))
    v, ok = values[read], valid[read]
    regions = label_regions(v[r0:r0 + h, c0:c0 + w], ok[r0:r0 + h, c0:c0 + w])
    halo = _halo_codes(v, ok, r0, c0, h, w)
    return regions, halo, _off_raster(r0, c0, v.shape, h, w)


def test_outside_is_traced_without_changing_the_regions():
    values = speckled(48, seed=11)  # nodata border on the top and left
    valid = values > 0
    regions, halo, off = _tile(values, valid, 0, 0, 24, 24)  # top left: top and left beyond the raster
    rings, outside = trace_with_outside(regions, halo, off)
    plain = trace(regions, halo)
    assert rings.label.tolist() == plain.label.tolist()
    same = shapely.normalize(rings.polygons.geometries()), shapely.normalize(plain.polygons.geometries())
    assert shapely.equals_exact(*same, tolerance=0).all()  # the same vertices (rings may start elsewhere)
    # Regions and outside tile the tile and the ring beyond the raster, edge-matched.
    every = np.concatenate([rings.polygons.geometries(), outside.geometries()])
    assert shapely.coverage_is_valid(every)
    # The tile, the ring beyond the raster on the top and left and its two corners beyond it on the other sides.
    expected = shapely.union_all([shapely.box(-1, -1, 24, 24), shapely.box(24, -1, 25, 0), shapely.box(-1, 24, 0, 25)])
    assert shapely.union_all(every).equals(expected)
    assert len(outside) == 1  # the nodata border reaches the raster edge: one outside polygon


@pytest.mark.parametrize("tolerance", [15.0, 25.0, 60.0])
def test_polygons_geos_cannot_change_are_left_out_with_the_same_result(tolerance):
    values = speckled(96, seed=12)
    values[40:44, 50:70] = 0
    regions, halo, off = _tile(values, values > 0, 32, 32, 48, 48)  # an inner tile with a nodata hole
    rings, outside = trace_with_outside(regions, halo, off)
    to_map = (30.0, 0.0, 1000.0, 0.0, -30.0, 9000.0)  # 30 m pixels: corners of two pixel steps are 450 m²
    polys, beside = rings.polygons.transformed(to_map), outside.transformed(to_map)
    fixed = fixed_vertices(rings.polygons, outside, (True, True, True, True), 48, 48)
    got = simplify_piece(polys, beside, tolerance, fixed)
    everything = np.concatenate([polys.geometries(), beside.geometries()])
    expected = simplify_coverage(everything, tolerance, fixed_boundary=True)[:len(polys)]
    assert shapely.equals(got, expected).all()
    assert shapely.coverage_is_valid(got)
    changed = ~shapely.equals_exact(got, polys.geometries(), tolerance=0)
    if tolerance ** 2 < 450:  # below the smallest corner: nothing to remove
        assert not changed.any()
    else:
        assert changed.mean() > 0.3
