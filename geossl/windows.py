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
