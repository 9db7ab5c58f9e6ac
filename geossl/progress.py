"""Progress bars, and machine-readable progress lines for programs that run geossl (``geossl --progress``).

Every progress bar of geossl is a :class:`ProgressBar`: a tqdm bar on a terminal, and with ``--progress`` also
lines on stderr that another program reads (the QGIS plugin turns them into its progress bar)::

    geossl-progress: 42.0 predicting blocks

the share done in percent (one decimal), then what is being done. A line is written when the percent (rounded to
one decimal) or the text changes. A run of several stages (a pipeline's steps) gives each its part of the whole
(:func:`stage`), so the percent only grows across them; within a stage, each bar runs over the stage's part.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType

from tqdm import tqdm

#: What starts a progress line.
PREFIX = "geossl-progress:"


@dataclass
class _Lines:
    """Whether lines are written, the part of the whole the current stage spans, and the last line written."""

    on: bool = False
    start: float = 0.0
    stop: float = 1.0
    last: tuple[float, str] | None = None


_LINES = _Lines()


def enable(on: bool = True) -> None:
    """Write progress lines from now on (``geossl --progress``)."""
    _LINES.on, _LINES.start, _LINES.stop, _LINES.last = on, 0.0, 1.0, None


def enabled() -> bool:
    """True when progress lines are written."""
    return _LINES.on


def report(fraction: float, what: str) -> None:
    """``fraction`` (0-1) of the current stage is done, doing ``what``: a line when it says something new."""
    if not _LINES.on:
        return
    share = min(max(fraction, 0.0), 1.0)
    percent = round(100 * (_LINES.start + share * (_LINES.stop - _LINES.start)), 1)
    if _LINES.last == (percent, what):
        return
    _LINES.last = (percent, what)
    print(f"{PREFIX} {percent:.1f} {what}", file=sys.stderr, flush=True)


@contextmanager
def stage(index: int, count: int, what: str) -> Iterator[None]:
    """Stage ``index`` of ``count`` equal stages of the current one (reported as begun, doing ``what``)."""
    outer = _LINES.start, _LINES.stop
    width = (outer[1] - outer[0]) / max(count, 1)
    _LINES.start, _LINES.stop = outer[0] + index * width, outer[0] + (index + 1) * width
    report(0.0, what)
    try:
        yield
    finally:
        _LINES.start, _LINES.stop = outer


class ProgressBar:
    """A tqdm bar of ``total`` steps (shown on a terminal, unless ``quiet``) that also reports its progress."""

    def __init__(self, total: int, desc: str, unit: str = "task", quiet: bool = False) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self._bar = tqdm(total=total, desc=desc, unit=unit, disable=quiet or None, leave=False)
        report(0.0, desc)

    def update(self, n: int = 1) -> None:
        """``n`` more steps are done."""
        self._bar.update(n)
        self.done += n
        report(self.done / self.total if self.total else 1.0, self.desc)

    def close(self) -> None:
        """Close the terminal bar."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
