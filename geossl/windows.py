"""Window geometry: the one place that decides how a raster is cut into overlapping windows.

For a side of ``n`` pixels, windows of ``size`` with ``overlap`` advance by ``stride = size - overlap``::

    starts = [0, stride, 2*stride, ...] while start + size < n, then n - size as the last start

so the last window ends exactly on the edge and every pixel is covered; a side shorter than one window gets
a single window starting at 0 that reaches past the edge (the caller pads it, e.g. by reflection). Training,
prediction and vectorization all ask this module.

Blending (prediction). Overlapping windows are averaged with a weight that falls smoothly to (almost) zero
towards the window's sides, so no seam shows where one window ends. Along one axis, with ``m = min(overlap,
size // 2)`` the ramp length, the weight of pixel ``i`` of a window is::

    ramp(i) = sin^2(pi * (i + 0.5) / (2 m))      for i < m             (rising side)
    1                                            for m <= i < size - m
    ramp(size - 1 - i)                           for i >= size - m     (falling side)

and the 2-D weight is the outer product of the row and column profiles. ``ramp(i) + ramp(m - 1 - i) = 1``
(``sin^2 + cos^2``), so where two windows ``stride = size - overlap`` apart overlap by exactly ``m`` pixels
their weights already sum to 1; elsewhere (the last, shifted window) the blend divides by the weight sum. A
window side that lies on the raster's edge has no neighbour to blend with and keeps weight 1 up to the edge,
so every pixel of the raster gets a positive weight sum.

Blocks (prediction fan-out). A wide raster is cut into column blocks that are predicted independently. A
border is put at the centre column ``c_j + size // 2`` of a window ``j``: with ``overlap < size / 2`` only
window ``j`` covers both sides of it, so only that window column is computed twice (once per block), and the
blended value of every pixel is the same whatever the blocks (same windows, same weights).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from affine import Affine
from rasterio.windows import Window


def starts(n: int, size: int, stride: int) -> list[int]:
    """Window starts along one side of ``n`` pixels (see the module docstring)."""
    if size <= 0 or stride <= 0:
        raise ValueError("size and stride must be positive")
    if n <= size:
        return [0]
    out = list(range(0, n - size, stride))
    out.append(n - size)
    return out


@dataclass(frozen=True)
class WindowGrid:
    """Overlapping windows over a ``height`` x ``width`` raster."""

    height: int
    width: int
    size: int
    overlap: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.overlap < self.size:
            raise ValueError(f"overlap {self.overlap} must be in [0, size={self.size})")

    @property
    def stride(self) -> int:
        """Distance between window starts."""
        return self.size - self.overlap

    @property
    def row_starts(self) -> list[int]:
        """Row offsets of the window rows."""
        return starts(self.height, self.size, self.stride)

    @property
    def col_starts(self) -> list[int]:
        """Column offsets of the window columns."""
        return starts(self.width, self.size, self.stride)

    def __len__(self) -> int:
        return len(self.row_starts) * len(self.col_starts)

    def row(self, i: int) -> list[Window]:
        """The windows of the ``i``-th window row (full ``size``; may reach past a short raster's edge)."""
        r = self.row_starts[i]
        return [Window(c, r, self.size, self.size) for c in self.col_starts]

    def __iter__(self) -> Iterator[Window]:
        for i in range(len(self.row_starts)):
            yield from self.row(i)

    def col_starts_between(self, col0: int, col1: int) -> list[int]:
        """Starts of the window columns that cover at least one of the columns ``[col0, col1)``."""
        return [c for c in self.col_starts if c < col1 and c + self.size > col0]

    def weight(self, window: Window) -> np.ndarray:
        """Blending weight ``(size, size)`` float32 of a window of this grid (see the module docstring).

        Sides on the raster's edge keep weight 1; the others ramp down over ``min(overlap, size // 2)`` pixels.
        """
        r, c = int(window.row_off), int(window.col_off)
        rows = blend_profile(self.size, self.overlap, lead=r > 0, trail=r + self.size < self.height)
        cols = blend_profile(self.size, self.overlap, lead=c > 0, trail=c + self.size < self.width)
        return np.outer(rows, cols)


def hann_ramp(length: int) -> np.ndarray:
    """The rising half of a Hann window sampled at pixel centres: ``sin^2(pi (i + 0.5) / (2 length))``."""
    i = np.arange(length, dtype=np.float64)
    return np.sin(math.pi * (i + 0.5) / (2 * length)) ** 2


@lru_cache(maxsize=64)
def _profile(size: int, ramp: int, lead: bool, trail: bool) -> np.ndarray:
    out = np.ones(size, dtype=np.float64)
    if ramp > 0:
        up = hann_ramp(ramp)
        if lead:
            out[:ramp] *= up
        if trail:
            out[size - ramp :] *= up[::-1]
    out = out.astype(np.float32)
    out.flags.writeable = False
    return out


def blend_profile(size: int, overlap: int, lead: bool = True, trail: bool = True) -> np.ndarray:
    """1-D blending weight of a window side of ``size`` px (read-only float32).

    Args:
        size: window side.
        overlap: overlap between neighbouring windows; the ramps are ``min(overlap, size // 2)`` long.
        lead: ramp up at the start (False when the window starts on the raster's edge).
        trail: ramp down at the end (False when the window ends on the raster's edge).
    """
    return _profile(size, min(overlap, size // 2), lead, trail)


def column_blocks(grid: WindowGrid, block_width: int) -> list[tuple[int, int]]:
    """Cut the grid's columns into blocks about ``block_width`` wide; borders at window centres.

    Returns ``[(col0, col1), ...]`` covering ``[0, width)`` without gaps. With ``n = ceil(width /
    block_width)`` blocks, border ``k`` is the centre ``c_j + size // 2`` of the window whose centre is nearest to
    ``k * width / n`` (see the module docstring for why only that window is computed twice).
    """
    if block_width < grid.size:
        raise ValueError(f"block width {block_width} is smaller than the window size {grid.size}")
    n = math.ceil(grid.width / block_width)
    centres = [c + grid.size // 2 for c in grid.col_starts]
    borders = [0]
    for k in range(1, n):
        target = k * grid.width / n
        best = min(centres, key=lambda x: (abs(x - target), x))
        if borders[-1] < best < grid.width:
            borders.append(best)
    borders.append(grid.width)
    return list(zip(borders[:-1], borders[1:], strict=True))

def partition(n: int, size: int) -> list[tuple[int, int]]:
    """Cut a side of ``n`` pixels into consecutive ``[start, stop)`` pieces of ``size`` (the last one shorter).

    Unlike :func:`starts`, pieces never overlap: every pixel belongs to exactly one piece.
    """
    if size <= 0:
        raise ValueError("size must be positive")
    return [(s, min(s + size, n)) for s in range(0, n, size)]


@dataclass(frozen=True)
class Tiling:
    """A ``height`` x ``width`` raster cut into non-overlapping tiles of ``tile_height`` x ``tile_width``.

    Tile ``(i, j)`` covers rows ``partition(height, tile_height)[i]`` and columns
    ``partition(width, tile_width)[j]``; the tiles form a partition of the raster (each pixel in exactly one
    tile), in row-major order. Processing that needs context reads a tile with a ``halo`` of extra pixels on
    each side, clipped at the raster's edge (:meth:`with_halo`), and keeps only the tile's own pixels.
    """

    height: int
    width: int
    tile_height: int
    tile_width: int

    @property
    def rows(self) -> list[tuple[int, int]]:
        """``[start, stop)`` of each tile row."""
        return partition(self.height, self.tile_height)

    @property
    def cols(self) -> list[tuple[int, int]]:
        """``[start, stop)`` of each tile column."""
        return partition(self.width, self.tile_width)

    @property
    def shape(self) -> tuple[int, int]:
        """Number of tile rows and tile columns."""
        return len(self.rows), len(self.cols)

    def __len__(self) -> int:
        return self.shape[0] * self.shape[1]

    def tile(self, i: int, j: int) -> Window:
        """The pixels of tile ``(i, j)``."""
        (r0, r1), (c0, c1) = self.rows[i], self.cols[j]
        return Window(c0, r0, c1 - c0, r1 - r0)

    def with_halo(self, window: Window, halo: int) -> Window:
        """``window`` grown by ``halo`` pixels on every side, clipped to the raster."""
        r0, c0 = max(0, window.row_off - halo), max(0, window.col_off - halo)
        r1 = min(self.height, window.row_off + window.height + halo)
        c1 = min(self.width, window.col_off + window.width + halo)
        return Window(c0, r0, c1 - c0, r1 - r0)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        n_rows, n_cols = self.shape
        for i in range(n_rows):
            for j in range(n_cols):
                yield i, j


def touched_pixels(transform: Affine, width: int, height: int, bounds: tuple[float, float, float, float]
                   ) -> tuple[int, int, int, int] | None:
    """The whole pixels of a ``width`` x ``height`` raster that ``bounds`` (CRS units) touches, clipped to it.

    Returns ``(row0, col0, row1, col1)`` (ends exclusive), or None when ``bounds`` misses the raster. Edges
    within 1e-6 pixel of a pixel border count as on it (float noise in reprojected bounds).
    """
    t = transform
    minx, miny, maxx, maxy = bounds
    col0 = max(0, math.floor(round((minx - t.c) / t.a, 6)))
    col1 = min(width, math.ceil(round((maxx - t.c) / t.a, 6)))
    row0 = max(0, math.floor(round((t.f - maxy) / -t.e, 6)))
    row1 = min(height, math.ceil(round((t.f - miny) / -t.e, 6)))
    if col1 <= col0 or row1 <= row0:
        return None
    return row0, col0, row1, col1
