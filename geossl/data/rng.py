"""Random draws as pure functions of where they happen, so a resumed run draws what an uninterrupted one drew.

Every random number of training comes from a generator made for one purpose at one position:
``draws(seed, stream, *position)``, e.g. ``("windows/labeled", rank, item)`` for a training window or
``("step", rank, step)`` for a step's strong views and feature dropout. Nothing random carries over from one
position to the next, so a run that restarts from a checkpoint at any step needs no saved generator state.

The key ``(seed, stream, *position)`` is mixed by NumPy's ``SeedSequence`` (the stream name enters as its
CRC-32), which gives unrelated seeds to neighbouring keys. A stream always takes the same number of positions.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

_WORD = 2**64


def seed_of(seed: int, stream: str, *position: int) -> int:
    """A 63-bit seed determined by the run's seed, the stream's name and the position in it (any ints)."""
    key = [seed % _WORD, zlib.crc32(stream.encode()), *(p % _WORD for p in position)]
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> np.uint64(1))


def draws(seed: int, stream: str, *position: int) -> torch.Generator:
    """A CPU generator seeded with :func:`seed_of` for the same arguments."""
    return torch.Generator().manual_seed(seed_of(seed, stream, *position))
