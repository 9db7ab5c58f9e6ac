"""The blending accumulator in torch tensors on the model's device, and the rule that picks an accumulator.

On a GPU, copying every window's class probabilities to the host (``K x size^2`` float32 a window) and blending
them there costs far more than the forward pass. :class:`TorchRowAccumulator` keeps them where the model wrote
them: windows are blended into buffers on the device (the same streaming rows and the same maths as
:class:`geossl.predict.accumulate.RowAccumulator`, see :class:`~geossl.predict.accumulate.RowWindows`), and
finished rows are reduced there, so that only the class index, its probability and the pixels per class (and
the probabilities, when asked for) come back. The reduction and its copies are queued on the device as soon as
the rows are finished, behind the windows that made them; the writer then waits for exactly that work (a CUDA
event), while the device goes on with the next windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from geossl.predict.accumulate import Accumulator, Decided, Pending, RowAccumulator, RowWindows

#: Blend in torch even on the CPU (tests only: the device path, checked on a machine without a GPU).
_TORCH_ON_CPU = False


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device``; to a GPU through pinned memory, copied without waiting for the device."""
    x = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return x.to(device)
    return x.pin_memory().to(device, non_blocking=True)


def to_host(device: torch.device, *tensors: torch.Tensor) -> Callable[[], list[np.ndarray]]:
    """Queue the copies of tensors on ``device`` to the host; the returned function waits for them (only them)."""
    host = [t.to("cpu", non_blocking=True) for t in tensors]  # from a GPU: into pinned memory
    done = None
    if device.type == "cuda":
        done = torch.cuda.Event()  # type: ignore[no-untyped-call]
        done.record(torch.cuda.current_stream(device))

    def wait() -> list[np.ndarray]:
        if done is not None:
            done.synchronize()
        return [h.numpy() for h in host]

    return wait


def blends_on_device(device: torch.device) -> bool:
    """The rule: a model on a CUDA device blends there; a model on the CPU blends in NumPy."""
    return device.type == "cuda"


def accumulator_for(device: torch.device, classes: int, col0: int, col1: int, height: int,
                    size: int) -> Accumulator:
    """The accumulator for a model on ``device`` (see :func:`blends_on_device`); arguments as RowAccumulator's."""
    if blends_on_device(device) or _TORCH_ON_CPU:
        return TorchRowAccumulator(classes, col0, col1, height, size, device)
    return RowAccumulator(classes, col0, col1, height, size)


@dataclass(frozen=True)
class TensorRows:
    """Finished rows on the device: blended probabilities ``(K, h, w)``, the valid mask, the uncovered valid pixels."""

    row0: int
    prob: torch.Tensor
    valid: torch.Tensor
    holes: torch.Tensor

    def reduce(self, a: int, b: int, probabilities: bool) -> Pending:
        """Queue the reduction of columns ``[a, b)`` on the device and the copies of its results to the host."""
        prob, valid = self.prob[:, :, a:b], self.valid[:, a:b]
        k = prob.shape[0]
        top, index = prob.max(dim=0)
        counts = torch.bincount(index.masked_fill(~valid, k).flatten(), minlength=k + 1)[:k]
        small = index.to(torch.uint8 if k <= 256 else torch.int16)
        extra = (prob,) if probabilities else ()
        copied = to_host(prob.device, self.holes.any(), small, top, valid, counts, *extra)

        def decided() -> Decided:
            holes, index_h, top_h, valid_h, counts_h, *prob_h = copied()
            if holes:
                raise RuntimeError(f"rows {self.row0}..{self.row0 + prob.shape[1]}: a valid pixel was covered "
                                   "by no window")
            return Decided(self.row0, index_h, top_h, valid_h, counts_h, prob_h[0] if prob_h else None)

        return decided


class TorchRowAccumulator(RowWindows[TensorRows]):
    """The accumulator in torch tensors on ``device`` (a model on a GPU); inputs already there are not copied."""

    def __init__(self, classes: int, col0: int, col1: int, height: int, size: int,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        super().__init__(classes, col0, col1, height, size)

    def _zeros(self, shape: tuple[int, ...], bool_: bool) -> torch.Tensor:
        return torch.zeros(shape, dtype=torch.bool if bool_ else torch.float32, device=self.device)

    def _array(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        return x.to(self.device) if isinstance(x, torch.Tensor) else to_device(x, self.device)

    def _copy(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    def _finish(self, n: int) -> TensorRows:
        prob, valid, holes = self._blended(n)
        return TensorRows(row0=self.top, prob=prob, valid=valid, holes=holes)
