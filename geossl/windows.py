"""Window geometry: the one place that decides how a raster is cut into overlapping windows.

For a side of ``n`` pixels, windows of ``size`` with ``overlap`` advance by ``stride = size - overlap``::

    starts = [0, stride, 2*stride, ...] while start + size < n, then n - size as the last start

so the last window ends exactly on the edge and every pixel is covered; a side shorter than one window gets
a single window starting at 0 that reaches past the edge (the caller pads it, e.g. by reflection). Training,
prediction and vectorization all ask this module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
