"""The model side of prediction: where the network comes from, and batched forward passes with optional TTA."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from geossl.models import ModelBundle, load_bundle

log = logging.getLogger(__name__)


class ModelSource(Protocol):
    """Something that gives the network in the process that runs a block (a Dask worker or this one)."""

    def load(self) -> nn.Module:
        """The network, in eval mode."""
        ...


_CACHE: dict[tuple[str, int], tuple[ModelBundle, nn.Module]] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CheckpointModel:
    """A geossl checkpoint on a path every worker can read; loaded once per process and shared by its tasks."""

    path: str

    def open(self) -> tuple[ModelBundle, nn.Module]:
        """Load (or reuse) the checkpoint: its bundle and network (:func:`geossl.models.load_bundle`)."""
        key = (self.path, Path(self.path).stat().st_mtime_ns) if Path(self.path).is_file() else (self.path, 0)
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE.clear()
                _CACHE[key] = load_bundle(self.path)
            return _CACHE[key]

    def load(self) -> nn.Module:
        """The checkpoint's network."""
        return self.open()[1]


@dataclass(frozen=True)
class ModuleModel:
    """A network held in memory (benchmarks and tests, or a caller that built its own)."""

    module: nn.Module = field(compare=False)

    def load(self) -> nn.Module:
        """The network itself, in eval mode."""
        return self.module.eval()


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run this thread's CPU forward passes on ``threads`` intra-op threads; restore the count afterwards.

    Float sums in a convolution are split over the threads, so the thread count decides the last bits of a
    probability: it must come from the options, never from how many tasks share the process. With torch's
    OpenMP backend the count belongs to the calling thread, so blocks running side by side on Dask worker
    threads each keep theirs. (Reading the count first initialises this thread's pool, which would otherwise
    happen at the first forward pass and could take another thread's count.)
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def softmax_classes(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes (dim 1) of ``(N, K, H, W)`` logits, in their memory layout.

    Channels-last logits are normalised along their innermost (contiguous) axis, several times faster than
    ``torch.softmax(dim=1)``, which would also hand back a planar copy.
    """
    if logits.is_contiguous() or not logits.is_contiguous(memory_format=torch.channels_last):
        return torch.softmax(logits, dim=1)
    return torch.softmax(logits.permute(0, 2, 3, 1), dim=-1).permute(0, 3, 1, 2)


class ModelRunner:
    """Softmax probabilities for batches of normalized windows, averaged over flips when ``tta``.

    The flips are the identity, left-right, up-down and both (each prediction is flipped back before averaging).
    The caller sets the CPU threads (:func:`torch_threads`).

    On the CPU the network and its batches are channels-last (``torch.channels_last``): oneDNN's convolutions
    run 2-3x faster than on planar batches (a U-Net on resnet18 2x, a 1x1 + 5x5 depthwise pair 3x, on 2 cores),
    and the probabilities come back channels-last too, for an accumulator that blends them so
    (:class:`geossl.predict.accumulate.RowAccumulator`). The sums of a convolution are ordered differently, so a
    probability may differ from a planar run's in its last bits (~1e-7).
    """

    FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))

    def __init__(self, model: nn.Module, device: str = "auto", tta: bool = False) -> None:
        self.device = resolve_device(device)
        #: On the CPU the network runs channels-last (see the class docstring); on a GPU as it comes.
        self.channels_last = self.device.type == "cpu"
        model = model.to(self.device)
        self.model = (model.to(memory_format=torch.channels_last) if self.channels_last else model).eval()
        self.flips = self.FLIPS if tta else self.FLIPS[:1]

    def upload(self, tiles: Sequence[np.ndarray]) -> torch.Tensor:
        """Windows ``(bands, S, S)`` stacked into a float32 batch ``(N, bands, S, S)`` on the device.

        On the CPU the batch is channels-last (its memory ``(N, S, S, bands)``): the stack writes it so, no copy
        after. For a GPU the windows are stacked into pinned host memory and copied without waiting for the
        device, so the host can prepare the next batch while the model runs.
        """
        n, (bands, h, w) = len(tiles), tiles[0].shape
        if self.channels_last:
            host = torch.empty((n, h, w, bands), dtype=torch.float32).permute(0, 3, 1, 2)
        else:
            host = torch.empty((n, bands, h, w), dtype=torch.float32, pin_memory=self.device.type == "cuda")
        np.stack(tiles, out=host.numpy())
        return host.to(self.device, non_blocking=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on the device ``(N, bands, S, S)`` → class probabilities ``(N, K, S, S)`` float32 there.

        On a GPU the work is queued and the call returns without waiting for it.
        """
        with torch.inference_mode():
            total: torch.Tensor | None = None
            for dims in self.flips:
                xi = torch.flip(x, dims) if dims else x
                logits = self.model(xi)
                if logits.shape[-2:] != x.shape[-2:]:
                    raise RuntimeError(f"the model returned {tuple(logits.shape[-2:])} pixels for "
                                       f"{tuple(x.shape[-2:])}")
                prob = softmax_classes(logits.float())
                prob = torch.flip(prob, dims) if dims else prob
                total = prob if total is None else total + prob
            assert total is not None
            if len(self.flips) > 1:
                total = total / len(self.flips)
            return total

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``(N, bands, S, S)`` float32 → class probabilities ``(N, K, S, S)`` float32, on the host."""
        return self.forward(self.upload(list(batch))).cpu().numpy()
