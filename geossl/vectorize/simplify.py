"""Coverage simplification in pieces: each tile is simplified on its own, with the borders it shares held fixed.

``--simplify`` runs GEOS's coverage simplifier (shapely ``coverage_simplify``): Visvalingam-Whyatt on every
edge of the coverage (the lines between the points where three polygons, or two and the outside, meet),
removing vertices whose triangle with their neighbours is smaller than about ``tolerance²`` unless that would
make an edge cross another. Each edge is simplified once and used by both polygons beside it, so there are no
gaps, overlaps or slivers, and every polygon stays valid.

Run on the whole coverage at once, GEOS holds every polygon and its edge graph: memory grows with the scene
(Zion map tiled 8 x 8, 103 Mpx, ``--min-area 3600 --simplify 15``: 6.6 GB) and the work is done in one
thread after the tracing. Here each tile is simplified inside its own task, on the worker threads, right after
it is traced, and the simplified pieces are then joined across tile borders exactly as unsimplified ones
(:mod:`.merge`). What makes the pieces fit together:

- A tile's *shared* sides (those bordering another tile) are held fixed: the tile's coverage is simplified with
  ``simplify_boundary=False``, which keeps its outer boundary as it is and lets no simplified edge cross it. So
  the pieces on both sides of a tile border keep exactly the vertices the tracer gave them there (bit-identical
  map coordinates), and the merge's exact edge-matched union still applies. An edge that crosses a tile border
  is split there: each half is simplified once, in its tile, and the crossing point stays. Everything else is
  simplified as in one pass: an edge lies in one tile, both polygons beside it are in that tile's coverage, and
  so is every vertex its simplification is checked against (those lie on the two polygons' rings).
- The coverage's own outer boundary (the raster's edge and nodata) is simplified as in one pass. For that a
  tile is traced together with its *outside*: its nodata pixels and the ring of pixels beyond the raster on its
  unshared sides, as extra polygons (:func:`trace_with_outside`). The boundary towards the outside is then an
  inner edge, simplified; only the outside's own outer boundary (beyond the raster, or along shared sides) is
  fixed.
- A tile that borders no other (the raster is one tile) is the whole coverage: it is simplified with
  ``simplify_boundary=True``, exactly as a whole-coverage simplification.

GEOS only gets the polygons it could change: one without a vertex it may remove (not a node, not on a shared
side, and whose triangle with its neighbours is below ``tolerance²``) keeps every edge as it is, so it is left
out, and its edges are held fixed as the outer boundary of the rest (:func:`simplify_piece`). At 30 m pixels
and a 15 m tolerance no pixel-staircase corner qualifies (each is 450 m² > 15²) and GEOS is skipped; at 30 m
nearly every polygon goes to GEOS.

Why this design (measured; figures in bench/RESULTS.md, ``bench/vectorize.py``):

- Pieces bounded in both directions. A row of tiles (the other option) grows with the raster's width: the 8 x 8
  map's rows hold twice the 4 x 4 map's pixels, and peak memory would follow. Per tile, the 8 x 8 map's peak RSS
  stays within about 1.2x the 4 x 4 map's.
- GEOS costs the same per vertex in small pieces as at once (about 4 µs a vertex here; the sieved 4 x 4 map in
  pieces of 1 Mpx, 256 kpx or 64 kpx took the same total), and it releases the GIL: pieces simplified in the
  tile tasks run on every worker thread, with no second pass over the polygons.
- Results as a whole-coverage pass where the scene is one piece (the same call), and as close to it elsewhere
  as that pass is to itself: Visvalingam-Whyatt meets ties everywhere on pixel staircases (equal triangles),
  which GEOS breaks by input order; permuting the input order of one whole-coverage pass changes 46 % of the
  polygons of a speckled test map, and the tiled result differs from the whole-coverage one by about as much
  area (tests/test_vectorize_simplify.py).
- Simplifying the edges between junctions ourselves (GRASS ``v.generalize``, mapshaper) would not give GEOS's
  results where the scene is one piece, and Visvalingam-Whyatt is a priority queue per edge: without compiled
  code, a Python step per removed vertex plus its crossing check, estimated (not built) to cost more than
  GEOS's 4 µs a vertex.

The cost of holding the tile borders is a few vertices kept along them: an edge that crosses a border keeps
the crossing point, and a boundary lying on a border line keeps its ends there. Every vertex of the result is
a vertex of the unsimplified boundary.
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
from scipy import ndimage

from geossl.vectorize.ragged import RaggedPolygons, ranges
from geossl.vectorize.trace import Regions, Rings, trace, trace_labels

log = logging.getLogger(__name__)


def simplify_coverage(geoms: np.ndarray, tolerance: float, fixed_boundary: bool = False) -> np.ndarray:
    """Simplify ``geoms`` (a valid coverage) at once with GEOS's coverage simplifier.

    ``tolerance`` is in map units: GEOS removes vertices whose triangle with their neighbours has an area below
    about ``tolerance²``. The coverage's outer boundary is simplified too, unless ``fixed_boundary``.
    """
    if len(geoms) == 0 or tolerance <= 0:
        return geoms
    out: np.ndarray = shapely.coverage_simplify(geoms, tolerance, simplify_boundary=not fixed_boundary)
    invalid = ~shapely.is_valid(out)
    if invalid.any():  # pragma: no cover - GEOS keeps a valid coverage valid
        log.warning("%d polygons invalid after simplification; they are repaired one by one", int(invalid.sum()))
        out[invalid] = shapely.make_valid(out[invalid])
    return out


def simplify_piece(polygons: RaggedPolygons, outside: RaggedPolygons, tolerance: float,
                   fixed: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Simplify a tile's ``polygons`` with the tile's ``outside`` polygons beside them, borders held fixed.

    The outer boundary of the polygons and their outside together stays as it is (see the module docstring);
    ``fixed`` marks the vertices of each that GEOS keeps whatever the tolerance (:func:`fixed_vertices`).
    Polygons without another vertex GEOS could remove (its triangle with its neighbours below ``tolerance²``)
    are left out of GEOS's input:
    none of their edges can change (a vertex's triangle only changes when a neighbour on its edge goes), and
    left out they are held fixed, which is the same. Returns the simplified polygons as shapely geometries.
    """
    geoms = polygons.geometries()
    if len(geoms) == 0:
        return geoms
    threshold = tolerance * tolerance * (1 + 1e-9)
    mine = min_corner_area(polygons, fixed[0]) <= threshold
    beside = outside.take(min_corner_area(outside, fixed[1]) <= threshold).geometries()
    if mine.any():
        coverage = np.concatenate([geoms[mine], beside])
        geoms[mine] = simplify_coverage(coverage, tolerance, fixed_boundary=True)[:int(mine.sum())]
    return geoms


def fixed_vertices(polygons: RaggedPolygons, outside: RaggedPolygons, shared: tuple[bool, bool, bool, bool],
                   height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Per coordinate of ``polygons`` and of ``outside`` (a tile's, pixel frame): whether GEOS must keep it.

    Those are the vertices on a shared side (the fixed outer boundary) and the *nodes*, where three or more
    rings meet (GEOS simplifies the edges between nodes and keeps the nodes). ``shared``: top, bottom, left,
    right, as in :class:`geossl.vectorize.tile.TileSpec`.
    """
    xy = np.concatenate([polygons.coords, outside.coords])
    x, y = xy[:, 0], xy[:, 1]
    top, bottom, left, right = shared
    fixed = (top & (y == 0)) | (bottom & (y == height)) | (left & (x == 0)) | (right & (x == width))
    key = (y.astype(np.int64) + 1) * (width + 3) + x.astype(np.int64) + 1
    closing = np.zeros(len(xy), dtype=bool)  # each ring's last coordinate repeats its first
    closing[polygons.ring_offsets[1:] - 1] = True
    closing[len(polygons.coords) + outside.ring_offsets[1:] - 1] = True
    _, inverse, counts = np.unique(key[~closing], return_inverse=True, return_counts=True)
    rings_through = np.zeros(len(xy), dtype=np.int64)
    rings_through[~closing] = counts[inverse]
    fixed |= rings_through >= 3
    n = len(polygons.coords)
    return fixed[:n], fixed[n:]


def min_corner_area(polygons: RaggedPolygons, fixed: np.ndarray) -> np.ndarray:
    """Per polygon, the smallest area of a triangle a vertex makes with its two neighbours on its ring.

    Vertices marked in ``fixed`` (one flag per coordinate) are not counted (infinite area).
    """
    if len(polygons) == 0:
        return np.zeros(0)
    xy, offsets = polygons.coords, polygons.ring_offsets
    starts, ends = offsets[:-1], offsets[1:] - 1  # rings are closed: ends[k] repeats starts[k]
    lengths = ends - starts
    index = ranges(starts, lengths)
    prev = index - 1
    prev[np.cumsum(lengths) - lengths] = ends - 1
    ux, uy = (xy[index] - xy[prev]).T
    vx, vy = (xy[index + 1] - xy[index]).T
    cross = ux * vy - uy * vx
    area = np.where(fixed[index], np.inf, 0.5 * np.abs(cross))
    per_ring = np.minimum.reduceat(area, np.cumsum(lengths) - lengths)
    first_ring = polygons.polygon_offsets[:-1]
    out: np.ndarray = np.minimum.reduceat(per_ring, first_ring)
    return out


def trace_with_outside(regions: Regions, halo: np.ndarray, off_raster: np.ndarray) -> tuple[Rings, RaggedPolygons]:
    """Trace the regions of a tile and, as extra polygons, its outside (see the module docstring).

    Args:
        regions: the tile's regions (label 0 for nodata pixels).
        halo: codes of the one-pixel ring around the tile, as :func:`geossl.vectorize.trace.trace` takes them.
        off_raster: ``(h + 2, w + 2)``, true for the ring pixels beyond the raster.

    Returns the regions' polygons, the same as :func:`~geossl.vectorize.trace.trace` gives (the outside adds no
    vertex to them: along a straight run, the pixels on its other side are either all outside or none), and the
    outside's polygons (4-connected parts of the outside, one polygon each), in the tile's pixel frame.
    """
    h, w = regions.labels.shape
    outside = off_raster.copy()
    outside[1:-1, 1:-1] = regions.labels == 0
    if not outside.any():
        return trace(regions, halo), _no_polygons()
    parts, _ = ndimage.label(outside)
    grid = halo.astype(np.int32, copy=True)
    grid[1:-1, 1:-1] = regions.labels
    grid = np.where(outside, parts + regions.n, grid).astype(np.int32)
    traced = trace_labels(grid)
    polygons = traced.polygons.shifted(-1, -1)  # the grid starts one pixel before the tile
    mine = traced.label <= regions.n
    return Rings(polygons.take(mine), traced.label[mine]), polygons.take(~mine)


def _no_polygons() -> RaggedPolygons:
    empty = np.zeros(1, dtype=np.int64)
    return RaggedPolygons(np.zeros((0, 2)), empty, empty)
