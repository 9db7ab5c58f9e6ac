"""Streaming blend of overlapping window predictions: only the rows of the window row in flight are held.

Windows arrive window row by window row (row starts ``s_0 < s_1 < ...``, see :mod:`geossl.windows`). While
window row ``i`` is blended the buffer holds scene rows ``[s_i, s_i + size)``: the weighted sum of class
probabilities (float32, ``K`` planes), the sum of weights and the valid mask. When window row ``i + 1``
starts, rows ``[s_i, s_{i+1})`` can receive nothing more (every later window starts at or below ``s_{i+1}``):
they are divided by their weight sum and handed out as finished rows, and the remaining overlap rows move
to the top of the buffer. Memory is ``(K + 2) x size x width`` values, whatever the scene's height.

The bookkeeping and the blending maths are written once (:class:`RowWindows`), over buffers of either array
library: :class:`RowAccumulator` holds them as NumPy arrays (the model runs on the CPU);
:class:`geossl.predict.accumulate_torch.TorchRowAccumulator` as torch tensors on the model's device, so that
only the decided class, its probability and the pixel counts travel back to the host. Either hands out
:class:`FinishedRows`: their reduction is started where they are finished (on a GPU it is queued behind the
windows that made them) and its result, :class:`Decided` rows on the host, is taken by the writer, which does not
know which accumulator produced them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import torch


@dataclass(frozen=True)
class Decided:
    """Finished rows reduced to what the outputs need, on the host; ``row0`` in the scene.

    ``index``: most probable class ``(h, w)`` (an integer type); ``top``: its probability ``(h, w)`` float32;
    ``valid``: ``(h, w)``; ``counts``: valid pixels per class ``(K,)``; ``prob``: the blended probabilities
    ``(K, h, w)`` float32, when they were asked for.
    """

    row0: int
    index: np.ndarray
    top: np.ndarray
    valid: np.ndarray
    counts: np.ndarray
    prob: np.ndarray | None


#: A started reduction: call it (on the writer's thread) to wait for the rows on the host.
Pending = Callable[[], Decided]


class FinishedRows(Protocol):
    """Rows an accumulator finished, over all its columns."""

    @property
    def row0(self) -> int:
        """First scene row."""
        ...

    def reduce(self, a: int, b: int, probabilities: bool) -> Pending:
        """Start reducing columns ``[a, b)`` (from the accumulator's first column), the probabilities too if asked."""
        ...


class Accumulator(Protocol):
    """What :func:`geossl.predict.block.predict_block` needs of an accumulator (both kinds have it)."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        ...

    def advance(self, row: int) -> Iterator[FinishedRows]:
        """Declare that no window starts above scene ``row`` any more: yield the rows above it, finished."""
        ...

    def finish(self) -> Iterator[FinishedRows]:
        """Yield every row still held."""
        ...

    def set_valid(self, row0: int, valid: np.ndarray) -> None:
        """Record the valid mask of scene rows ``[row0, row0 + h)``."""
        ...

    def add(self, prob: np.ndarray | torch.Tensor, weight: np.ndarray, row0: int, col0: int) -> None:
        """Add a window's probabilities ``(K, h, w)`` with its weight ``(h, w)`` at scene ``(row0, col0)``."""
        ...


F = TypeVar("F", covariant=True)


class RowWindows(ABC, Generic[F]):
    """Blends window predictions over columns ``[col0, col1)`` of a scene ``height`` rows tall.

    Subclasses choose the array library: they allocate the buffers, bring inputs into it and wrap finished
    rows. The buffers are typed ``Any`` because NumPy arrays and torch tensors share the operations used here.
    The class sums are held ``(K, rows, width)``, or ``(rows, width, K)`` in memory when :attr:`channels_last`;
    either way the maths sees them as ``(K, rows, width)`` (a transposed view), element by element the same.
    """

    #: Hold the class sums class-innermost: windows from a channels-last model are added without a transpose.
    channels_last = False

    def __init__(self, classes: int, col0: int, col1: int, height: int, size: int) -> None:
        self.col0, self.width, self.height = col0, col1 - col0, height
        self.rows = min(size, height)
        if self.channels_last:  # (rows, width, K) memory, seen (K, rows, width)
            self._sum: Any = self._zeros((self.rows, self.width, classes), bool_=False).transpose(2, 0, 1)
        else:
            self._sum = self._zeros((classes, self.rows, self.width), bool_=False)
        self._weight: Any = self._zeros((self.rows, self.width), bool_=False)
        self._valid: Any = self._zeros((self.rows, self.width), bool_=True)
        self.top = 0  # scene row of buffer row 0

    @abstractmethod
    def _zeros(self, shape: tuple[int, ...], bool_: bool) -> Any:
        """A zero buffer: float32, or bool when ``bool_``."""

    @abstractmethod
    def _array(self, x: np.ndarray | torch.Tensor) -> Any:
        """``x`` as the buffers' array type (without copying where it already is one)."""

    @abstractmethod
    def _copy(self, x: Any) -> Any:
        """A copy of a buffer slice (it is about to be overwritten)."""

    @abstractmethod
    def _finish(self, n: int) -> F:
        """Buffer rows ``[0, n)`` as finished rows (see :meth:`_blended`)."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        return int(self._sum.nbytes + self._weight.nbytes + self._valid.nbytes)

    def advance(self, row: int) -> Iterator[F]:
        """Declare that no window starts above scene ``row`` any more: yield the rows above it, finished."""
        if row < self.top:
            raise ValueError(f"windows must come in row order ({row} < {self.top})")
        n = min(row - self.top, self.rows)
        if n <= 0:
            return
        yield self._finish(n)
        keep = self.rows - n
        for buf in (self._sum, self._weight, self._valid):  # rows on the last axis but one
            buf[..., :keep, :] = self._copy(buf[..., n:, :])
            buf[..., keep:, :] = 0
        self.top = row

    def finish(self) -> Iterator[F]:
        """Yield every row still held (the last window row's)."""
        n = min(self.rows, self.height - self.top)
        if n > 0:
            yield self._finish(n)
            self.top += n
            for buf in (self._sum, self._weight, self._valid):
                buf[...] = 0

    def set_valid(self, row0: int, valid: np.ndarray) -> None:
        """Record the valid mask of scene rows ``[row0, row0 + h)`` (all columns of the accumulator)."""
        r = row0 - self.top
        self._valid[r : r + valid.shape[0]] = self._array(valid)

    def add(self, prob: np.ndarray | torch.Tensor, weight: np.ndarray, row0: int, col0: int) -> None:
        """Add a window's probabilities ``(K, h, w)`` with its weight ``(h, w)`` at scene ``(row0, col0)``."""
        r, c = row0 - self.top, col0 - self.col0
        h, w = weight.shape
        if r < 0 or c < 0 or r + h > self.rows or c + w > self.width:
            raise ValueError(f"window at ({row0}, {col0}) of {h}x{w} falls outside the rows in flight")
        wt = self._array(weight)
        self._sum[:, r : r + h, c : c + w] += self._array(prob) * wt
        self._weight[r : r + h, c : c + w] += wt

    def _blended(self, n: int) -> tuple[Any, Any, Any]:
        """Buffer rows ``[0, n)``: blended probabilities, a copy of the valid mask, valid pixels no window covered."""
        weight = self._weight[:n]
        valid = self._copy(self._valid[:n])
        uncovered = weight <= 0
        prob = self._sum[:, :n] / (weight + uncovered)  # a weight of 0 (no window) divides by 1
        return prob, valid, valid & uncovered

    def _hole_error(self, n: int) -> RuntimeError:
        return RuntimeError(f"rows {self.top}..{self.top + n}: a valid pixel was covered by no window")


@dataclass(frozen=True)
class RowBlock:
    """Finished rows: blended probabilities ``(K, h, w)`` and the valid mask ``(h, w)``; ``row0`` in the scene."""

    row0: int
    prob: np.ndarray
    valid: np.ndarray

    def reduce(self, a: int, b: int, probabilities: bool) -> Pending:
        """Columns ``[a, b)`` reduced in NumPy when the result is asked for (on the writer's thread)."""
        return partial(self.decide, a, b, probabilities)

    def decide(self, a: int, b: int, probabilities: bool) -> Decided:
        """Columns ``[a, b)``: the most probable class, its probability and the pixels per class."""
        prob, valid = self.prob[:, :, a:b], self.valid[:, a:b]
        index = prob.argmax(axis=0)
        top = np.take_along_axis(prob, index[None], axis=0)[0]
        counts = np.bincount(index[valid], minlength=prob.shape[0])
        return Decided(self.row0, index, top, valid, counts, prob if probabilities else None)


class RowAccumulator(RowWindows[RowBlock]):
    """The accumulator in NumPy arrays on the host (a model on the CPU), class sums class-innermost.

    The CPU model hands out channels-last probabilities (:class:`geossl.predict.runner.ModelRunner`): a window
    is then added in memory order, and finished rows' probabilities are ``(K, h, w)`` views of ``(h, w, K)``
    memory, which the per-pixel reductions read in order.
    """

    channels_last = True

    def _zeros(self, shape: tuple[int, ...], bool_: bool) -> np.ndarray:
        return np.zeros(shape, dtype=bool if bool_ else np.float32)

    def _array(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        return np.asarray(x)  # a CPU tensor is viewed, not copied

    def _copy(self, x: np.ndarray) -> np.ndarray:
        return x.copy(order="K")  # in the buffer's memory order: no transpose

    def _finish(self, n: int) -> RowBlock:
        prob, valid, holes = self._blended(n)
        if np.any(holes):
            raise self._hole_error(n)
        return RowBlock(row0=self.top, prob=prob, valid=valid)
