"""Polygonize a class window with NumPy: the regions' boundaries traced as rings, all at once.

GDAL's polygonizer builds one OGR feature per region and rasterio turns each into Python objects, about 30 µs a
region; on speckled land cover that is most of the time. Here every step is an array operation over the
boundary *runs* (maximal straight pieces of boundary between the same two regions), so the cost is a few
passes over the window plus a few passes over the runs.

Regions are the 4-connected components of equal class value among valid pixels (GDAL's default
connectivity). Coordinates are pixel corners in the window's frame: ``x`` = column, ``y`` = row, integers, so
rings from different windows meet exactly once they are offset to the raster's frame.

How a ring is followed. Every directed run keeps its region on the left (left of direction ``(dx, dy)`` is
``(-dy, dx)``). Directions are ``0: +x, 1: +y, 2: -x, 3: -y``. Arriving at a vertex in direction ``k``, look at
the two pixels ahead: ``ahead_region`` (on the region's side) and ``ahead_other``. The next run leaves in::

    k - 1 (mod 4)   if ahead_other belongs to the region   (concave corner, or a pinch: see below)
    k               elif ahead_region belongs to the region (straight on)
    k + 1 (mod 4)   otherwise                               (convex corner)

A *pinch* is a vertex where a region touches itself diagonally. Taking ``k - 1`` there makes the outer ring
pass through the vertex once and closes the enclosed part as a hole touching the shell at a point, which is
valid OGC; the other choice gives a self-touching shell, which is not. Regions that touch diagonally but are
different components never meet in this rule, because the rule compares component labels, not classes.

Each run keeps its start vertex; a run ends wherever the pair of regions on its two sides changes, so every
point where three regions meet is a vertex of every ring through it (polygons are *edge-matched*, which
coverage simplification needs). Exterior rings have positive signed area in this frame, holes negative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import depth_first_order

from geossl.vectorize.ragged import RaggedPolygons, ranges

#: ``(row, col)`` offsets, relative to the vertex's north-west pixel, of the pixel ahead on the region's side
#: and the pixel ahead on the other side, for each incoming direction (see the module docstring).
_AHEAD_REGION = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
_AHEAD_OTHER = np.array([[0, 1], [1, 1], [1, 0], [0, 0]])


@dataclass(frozen=True)
class Regions:
    """Connected regions of a window: a label image and, per label, the class value and pixel count.

    ``labels`` is 0 where a pixel is not valid, else 1..n; ``value[i]``/``count[i]`` describe label ``i``
    (index 0 is unused).
    """

    labels: np.ndarray
    value: np.ndarray
    count: np.ndarray

    @property
    def n(self) -> int:
        """Number of regions."""
        return len(self.value) - 1


@dataclass(frozen=True)
class Rings:
    """One polygon per region (pixel-corner coordinates), and the region ``label`` of each polygon."""

    polygons: RaggedPolygons
    label: np.ndarray


def label_regions(values: np.ndarray, valid: np.ndarray) -> Regions:
    """4-connected components of equal value among the ``valid`` pixels of a 2-D integer array."""
    labels = np.zeros(values.shape, dtype=np.int32)
    value_parts: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    count = 0
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:  # counting is faster than sorting
        present = np.flatnonzero(np.bincount(values[valid], minlength=1))
    else:
        present = np.unique(values[valid])
    for v in present:
        mask = values == v
        mask &= valid
        lab, k = ndimage.label(mask)
        np.add(lab, count, out=labels, where=mask)
        value_parts.append(np.full(k, v, dtype=np.int64))
        count += k
    counts = np.bincount(labels.ravel(), minlength=count + 1).astype(np.int64)
    counts[0] = 0
    return Regions(labels=labels, value=np.concatenate(value_parts), count=counts)


def _runs_along_rows(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximal runs along each row where ``first != second`` with the pair constant.

    Returns ``(row, start, stop)``: columns ``start..stop-1`` of ``row`` form one run.
    """
    rows, cols = first.shape
    boundary = first != second
    changed = np.ones((rows, cols + 1), dtype=bool)  # True where a run may start or must end
    changed[:, 1:-1] = (first[:, 1:] != first[:, :-1]) | (second[:, 1:] != second[:, :-1])
    padded = np.zeros((rows, cols + 2), dtype=bool)
    padded[:, 1:-1] = boundary
    starts = padded[:, 1:-1] & (~padded[:, :-2] | changed[:, :-1])
    ends = padded[:, 1:-1] & (~padded[:, 2:] | changed[:, 1:])
    flat_start = np.flatnonzero(starts)
    flat_end = np.flatnonzero(ends)  # row-major order: the k-th end closes the k-th start
    r_start, c_start = np.divmod(flat_start, cols)
    return r_start, c_start, flat_end - r_start * cols + 1


@dataclass(frozen=True)
class _Runs:
    """Directed boundary runs: start ``(sx, sy)``, end ``(ex, ey)``, direction and the region on their left."""

    sx: np.ndarray
    sy: np.ndarray
    ex: np.ndarray
    ey: np.ndarray
    direction: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.sx)


def trace(regions: Regions, halo: np.ndarray | None = None) -> Rings:
    """Trace every region of ``regions`` into a polygon (pixel-corner coordinates of the window).

    Args:
        regions: the window's regions (:func:`label_regions`).
        halo: optional codes of the one-pixel ring around the window, shape ``(h + 2, w + 2)`` (the inner part
            is ignored). Codes must be negative, equal only where the outside pixels are the same class, and
            0 for nothing (nodata or off the raster). Runs along the window's edge then split where the
            outside changes, so the polygons stay edge-matched with the neighbouring window's.
    """
    return trace_labels(regions.labels, halo)


def trace_labels(labels: np.ndarray, halo: np.ndarray | None = None) -> Rings:
    """:func:`trace` for a label image (0 or negative: not a region; 1..n: regions), one polygon per label."""
    h, w = labels.shape
    grid = np.zeros((h + 2, w + 2), dtype=np.int32)
    if halo is not None:
        grid[:] = halo
    grid[1:-1, 1:-1] = labels
    runs = _directed_runs(grid)
    if len(runs) == 0:
        empty = np.zeros(1, dtype=np.int64)
        return Rings(RaggedPolygons(np.zeros((0, 2)), empty, empty), np.zeros(0, dtype=np.int64))
    order, ring_start = _walk_rings(_successors(grid, runs))
    xy, ring_offsets = _ring_coordinates(runs, order, ring_start)
    return _polygons(xy, ring_offsets, runs.label[order[ring_start]])


def _directed_runs(grid: np.ndarray) -> _Runs:
    """Every boundary run of the labelled ``grid`` (window plus halo), once per side that is a region."""
    parts = []  # (start x, start y, end x, end y, direction, label) per directed run
    # Horizontal lines y = 0..h between grid rows y (above) and y + 1 (below).
    above, below = grid[:-1, 1:-1], grid[1:, 1:-1]
    y, x0, x1 = _runs_along_rows(above, below)
    lab_below, lab_above = below[y, x0], above[y, x0]
    keep = lab_below > 0
    parts.append((x0[keep], y[keep], x1[keep], y[keep], 0, lab_below[keep]))
    keep = lab_above > 0
    parts.append((x1[keep], y[keep], x0[keep], y[keep], 2, lab_above[keep]))
    # Vertical lines x = 0..w between grid columns x (left) and x + 1 (right); runs go down the rows.
    left, right = np.ascontiguousarray(grid[1:-1, :-1].T), np.ascontiguousarray(grid[1:-1, 1:].T)
    x, y0, y1 = _runs_along_rows(left, right)
    lab_left, lab_right = left[x, y0], right[x, y0]
    keep = lab_left > 0
    parts.append((x[keep], y0[keep], x[keep], y1[keep], 1, lab_left[keep]))
    keep = lab_right > 0
    parts.append((x[keep], y1[keep], x[keep], y0[keep], 3, lab_right[keep]))
    return _Runs(sx=np.concatenate([p[0] for p in parts]), sy=np.concatenate([p[1] for p in parts]),
                 ex=np.concatenate([p[2] for p in parts]), ey=np.concatenate([p[3] for p in parts]),
                 direction=np.concatenate([np.full(len(p[0]), p[4], dtype=np.int64) for p in parts]),
                 label=np.concatenate([p[5] for p in parts]))


def _successors(grid: np.ndarray, runs: _Runs) -> np.ndarray:
    """The successor of each run: the run leaving its end vertex by the turn rule (the module docstring).

    The vertex (x, y) has its north-west pixel at grid[y, x].
    """
    h, w = grid.shape[0] - 2, grid.shape[1] - 2
    ex, ey, direction, label = runs.ex, runs.ey, runs.direction, runs.label
    ahead_region = grid[ey + _AHEAD_REGION[direction, 0], ex + _AHEAD_REGION[direction, 1]]
    ahead_other = grid[ey + _AHEAD_OTHER[direction, 0], ex + _AHEAD_OTHER[direction, 1]]
    turn = np.where(ahead_other == label, 3, np.where(ahead_region == label, 0, 1))
    next_direction = (direction + turn) % 4
    lookup = np.full((h + 1) * (w + 1) * 4, -1, dtype=np.int32)
    lookup[(runs.sy * (w + 1) + runs.sx) * 4 + direction] = np.arange(len(runs), dtype=np.int32)
    succ: np.ndarray = lookup[(ey * (w + 1) + ex) * 4 + next_direction]
    if (succ < 0).any():  # pragma: no cover - would be a bug in the turn rule
        raise RuntimeError("polygon tracing found an open ring")
    return succ


def _walk_rings(succ: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs ring after ring (``order``), and the position in ``order`` where each ring starts.

    Rings are the cycles of the successor permutation. One depth-first walk (in C) lists them ring after
    ring: run i leads to its successor and to a connector node n + i, which leads to run i + 1 (csgraph visits
    neighbours by index, so the successor comes first). The walk follows a ring until it closes, then,
    backing up, enters the next unvisited ring through a connector. A run reached from a connector (or the
    first) starts a ring; the others follow their predecessor in the ring.
    """
    n = len(succ)
    indices = np.empty(3 * n - 1, dtype=np.int32)  # int32 and float64 are what csgraph works in: no copies
    indices[0:2 * n:2] = succ
    indices[1:2 * n:2] = np.arange(n, 2 * n, dtype=np.int32)
    indices[2 * n:] = np.arange(1, n, dtype=np.int32)
    indptr = np.concatenate([np.arange(0, 2 * n, 2, dtype=np.int32), 2 * n + np.arange(n + 1, dtype=np.int32)])
    indptr[-1] = 3 * n - 1
    graph = csr_matrix((np.ones(3 * n - 1), indices, indptr), shape=(2 * n, 2 * n))
    walk, reached_from = depth_first_order(graph, 0, directed=True, return_predecessors=True)
    order = walk[walk < n].astype(np.int64)
    from_node = reached_from[order]
    return order, np.flatnonzero((from_node < 0) | (from_node >= n))


def _ring_coordinates(runs: _Runs, order: np.ndarray, ring_start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed rings: the start vertices of their runs in ring order, each ring's first vertex repeated at its end.

    Returns the coordinates ``(vertices, 2)`` and the ring offsets into them.
    """
    n, n_rings = len(order), len(ring_start)
    lengths = np.diff(np.append(ring_start, n))
    ring_offsets = np.concatenate([[0], np.cumsum(lengths + 1)])
    slot = np.arange(n) + np.repeat(np.arange(n_rings), lengths)
    xy = np.empty((n + n_rings, 2), dtype=np.float64)
    xy[slot, 0] = runs.sx[order]
    xy[slot, 1] = runs.sy[order]
    xy[ring_offsets[1:] - 1] = xy[ring_offsets[:-1]]
    return xy, ring_offsets


def _polygons(xy: np.ndarray, ring_offsets: np.ndarray, ring_label: np.ndarray) -> Rings:
    """Rings grouped into one polygon per region (``ring_label``), exterior ring first, then its holes."""
    # Signed areas (shoelace): exterior rings positive, holes negative.
    cross = xy[:-1, 0] * xy[1:, 1] - xy[1:, 0] * xy[:-1, 1]
    area2 = np.add.reduceat(np.append(cross, 0.0), ring_offsets[:-1])
    # reduceat sums up to the next ring's first vertex: drop the term that crosses into the next ring.
    area2 -= np.append(cross, 0.0)[ring_offsets[1:] - 1]
    ring_order = np.lexsort((area2 < 0, ring_label))
    new_lengths = np.diff(ring_offsets)[ring_order]
    coords = xy[ranges(ring_offsets[:-1][ring_order], new_lengths)]
    ring_offsets = np.concatenate([[0], np.cumsum(new_lengths)])
    sorted_label = ring_label[ring_order]
    poly_start = np.flatnonzero(np.concatenate([[True], sorted_label[1:] != sorted_label[:-1]]))
    polygon_offsets = np.concatenate([poly_start, [len(ring_label)]])
    return Rings(RaggedPolygons(coords, ring_offsets, polygon_offsets), label=sorted_label[poly_start])
