"""Streaming blend of overlapping window predictions: only the rows of the window row in flight are held.

Windows arrive window row by window row (row starts ``s_0 < s_1 < ...``, see :mod:`geossl.windows`). While
window row ``i`` is blended the buffer holds scene rows ``[s_i, s_i + size)``: the weighted sum of class
probabilities (float32, ``K`` planes), the sum of weights and the valid mask. When window row ``i + 1``
starts, rows ``[s_i, s_{i+1})`` can receive nothing more (every later window starts at or below ``s_{i+1}``):
they are divided by their weight sum and handed out as a :class:`RowBlock`, and the remaining overlap rows move
to the top of the buffer. Memory is ``(K + 2) x size x width`` values, whatever the scene's height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RowBlock:
    """Finished rows: blended probabilities ``(K, h, w)`` and the valid mask ``(h, w)``; ``row0`` in the scene."""

    row0: int
    prob: np.ndarray
    valid: np.ndarray


class RowAccumulator:
    """Blends window predictions over columns ``[col0, col1)`` of a scene ``height`` rows tall."""

    def __init__(self, classes: int, col0: int, col1: int, height: int, size: int) -> None:
        self.col0, self.width, self.height = col0, col1 - col0, height
        rows = min(size, height)
        self._sum = np.zeros((classes, rows, self.width), dtype=np.float32)
        self._weight = np.zeros((rows, self.width), dtype=np.float32)
        self._valid = np.zeros((rows, self.width), dtype=bool)
        self.top = 0  # scene row of buffer row 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return self._sum.nbytes + self._weight.nbytes + self._valid.nbytes

    def advance(self, row: int) -> Iterator[RowBlock]:
        """Declare that no window starts above scene ``row`` any more: yield the rows above it, finished."""
        if row < self.top:
            raise ValueError(f"windows must come in row order ({row} < {self.top})")
        n = min(row - self.top, self._weight.shape[0])
        if n <= 0:
            return
        yield self._finish(n)
        keep = self._weight.shape[0] - n
        self._sum[:, :keep] = self._sum[:, n:]
        self._weight[:keep] = self._weight[n:]
        self._valid[:keep] = self._valid[n:]
        self._sum[:, keep:] = 0
        self._weight[keep:] = 0
        self._valid[keep:] = False
        self.top = row

    def finish(self) -> Iterator[RowBlock]:
        """Yield every row still held (the last window row's)."""
        n = min(self._weight.shape[0], self.height - self.top)
        if n > 0:
            yield self._finish(n)
            self.top += n
            self._sum[:] = 0
            self._weight[:] = 0
            self._valid[:] = False

    def set_valid(self, row0: int, valid: np.ndarray) -> None:
        """Record the valid mask of scene rows ``[row0, row0 + h)`` (all columns of the accumulator)."""
        r = row0 - self.top
        self._valid[r : r + valid.shape[0]] = valid

    def add(self, prob: np.ndarray, weight: np.ndarray, row0: int, col0: int) -> None:
        """Add a window's probabilities ``(K, h, w)`` with its weight ``(h, w)`` at scene ``(row0, col0)``."""
        r, c = row0 - self.top, col0 - self.col0
        h, w = weight.shape
        if r < 0 or c < 0 or r + h > self._weight.shape[0] or c + w > self.width:
            raise ValueError(f"window at ({row0}, {col0}) of {h}x{w} falls outside the rows in flight")
        self._sum[:, r : r + h, c : c + w] += prob * weight
        self._weight[r : r + h, c : c + w] += weight

    def _finish(self, n: int) -> RowBlock:
        weight = self._weight[:n]
        valid = self._valid[:n].copy()
        if np.any(valid & (weight <= 0)):
            raise RuntimeError(f"rows {self.top}..{self.top + n}: a valid pixel was covered by no window")
        prob = self._sum[:, :n] / np.where(weight > 0, weight, 1.0)
        return RowBlock(row0=self.top, prob=prob, valid=valid)
