"""Deterministic interruption points, so tests can kill a run at an exact place instead of racing it.

``GEOSSL_KILL_AT=STEP:N`` makes a ``geossl run`` kill itself with SIGKILL (as ``kill -9`` would: no cleanup,
no exit handlers) when the N-th unit of work of pipeline step STEP starts; ``GEOSSL_KILL_AT=STEP:written``
when STEP has written its outputs (a scene-level step: its first scene's) but not yet recorded them in
``state.json``. Units of work are the prediction blocks and the tasks of
:func:`geossl.parallel.ordered_results` (vectorize's sieve and trace tiles) that run in this process; the
count starts again at every step. Outside a pipeline step, or with the variable unset, nothing happens.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from geossl.errors import InputError

log = logging.getLogger(__name__)

ENV = "GEOSSL_KILL_AT"
WRITTEN = "written"

_lock = threading.Lock()
_step: str | None = None
_units = 0


def target(steps: Collection[str]) -> tuple[str, str] | None:
    """``(step, point)`` named by ``GEOSSL_KILL_AT``, or None when unset; raises :class:`InputError` if malformed."""
    value = os.environ.get(ENV, "")
    if not value:
        return None
    step, _, point = value.partition(":")
    if step not in steps or not (point == WRITTEN or re.fullmatch("[1-9][0-9]*", point)):
        raise InputError(ENV, f"{value!r} is not STEP:N (N >= 1) or STEP:{WRITTEN} with STEP one of "
                              f"{', '.join(steps)}")
    return step, point


@contextmanager
def in_step(name: str) -> Iterator[None]:
    """Count the units of work that start while step ``name`` runs (from zero)."""
    global _step, _units
    with _lock:
        _step, _units = name, 0
    try:
        yield
    finally:
        with _lock:
            _step = None


def unit_started() -> None:
    """One unit of work of the running step starts: die here if it is the one ``GEOSSL_KILL_AT`` names."""
    global _units
    if not os.environ.get(ENV):
        return
    with _lock:
        _units += 1
        step, here = _step, f"{_step}:{_units}"
    if step is not None and os.environ.get(ENV) == here:
        _die(here)


def reached(point: str) -> None:
    """The running step reached ``point`` (e.g. :data:`WRITTEN`): die here if ``GEOSSL_KILL_AT`` names it."""
    step = _step
    if step is not None and os.environ.get(ENV) == f"{step}:{point}":
        _die(f"{step}:{point}")


def _die(here: str) -> None:
    log.warning("%s=%s reached: killing this process", ENV, here)
    os.kill(os.getpid(), signal.SIGKILL)
