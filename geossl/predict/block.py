"""Predict one block of a scene, streaming: read row bands ahead, run batches, blend, write finished rows.

Three things overlap: a reader thread reads and normalizes the next row band of windows while the model runs on
the current one, and a writer thread encodes and writes the rows the accumulator finished while the next ones are
computed. At most one row band is read ahead and one row block waits for writing, so memory stays bounded by
the block's width, never by the scene's size.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from geossl import killpoint
from geossl.models import ModelBundle
from geossl.predict import encode
from geossl.predict.accumulate import Accumulator, FinishedRows, Pending
from geossl.predict.accumulate_torch import accumulator_for
from geossl.predict.reader import RowBand, RowBandReader, open_scene
from geossl.predict.runner import ModelRunner, ModelSource, torch_threads
from geossl.predict.scene import Scene
from geossl.predict.writers import BlockPieces, OutputKind
from geossl.windows import WindowGrid

log = logging.getLogger(__name__)

#: Name of the file whose presence in the staging folder tells running blocks to stop.
CANCEL_MARK = ".cancel"


@dataclass(frozen=True)
class BlockTask:
    """One block of one scene: output columns ``[col0, col1)``, every row; where its pieces go.

    ``threads``: the model's CPU threads (they decide how float sums round, so they are part of the plan).
    """

    scene: Scene
    index: int
    col0: int
    col1: int
    size: int
    overlap: int
    bundle: ModelBundle
    kinds: tuple[OutputKind, ...]
    pieces: tuple[Path, ...]
    stage: Path
    threads: int
    batch_size: int = 8
    tta: bool = False
    device: str = "auto"
    cache_bytes: int = 64 * 1024 * 1024

    @property
    def grid(self) -> WindowGrid:
        """The scene's window grid."""
        return WindowGrid(self.scene.height, self.scene.width, self.size, self.overlap)


@dataclass
class BlockStats:
    """What a block did: windows run and skipped (all nodata), pixels per class, time in the model.

    On a GPU, ``model_seconds`` is the time spent handing batches to the device: the model runs asynchronously.
    """

    windows: int = 0
    skipped: int = 0
    class_pixels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    confidence_sum: float = 0.0
    model_seconds: float = 0.0
    seconds: float = 0.0


class Cancelled(RuntimeError):
    """The run was stopped (another block failed)."""


class _RowWriter:
    """Encodes finished rows into the outputs' pixel values and writes them (called on the writer thread)."""

    def __init__(self, task: BlockTask, pieces: BlockPieces, ext0: int, stats: BlockStats) -> None:
        self.coding = encode.ClassCoding.of(task.bundle.classes, task.bundle.ignore_id)
        self.pieces, self.stats = pieces, stats
        self.a, self.b = task.col0 - ext0, task.col1 - ext0
        self.probabilities = any(k.name == "probabilities" for k in task.kinds)

    def start(self, done: FinishedRows) -> Pending:
        """Start reducing ``done`` to this block's columns (on the caller's thread: on a GPU, queued in order)."""
        return done.reduce(self.a, self.b, self.probabilities)

    def __call__(self, pending: Pending) -> None:
        rows = pending()
        self.pieces.write("classes", self.coding.encode(rows.index, rows.valid)[None], rows.row0)
        self.pieces.write("confidence", encode.confidence(rows.top, rows.valid)[None], rows.row0)
        if rows.prob is not None:
            self.pieces.write("probabilities", encode.probabilities(rows.prob, rows.valid), rows.row0)
        self.stats.class_pixels += rows.counts
        self.stats.confidence_sum += float(rows.top[rows.valid].sum())


class _WriteQueue:
    """Hands finished row blocks to the writer thread, letting at most one wait there."""

    def __init__(self, pool: ThreadPoolExecutor, write: _RowWriter) -> None:
        self.pool, self.write = pool, write
        self.pending: Future[None] | None = None

    def put(self, blocks: list[FinishedRows]) -> None:
        """Queue ``blocks`` for writing, one after the other (each one's reduction started before the wait)."""
        for done in blocks:
            reduced = self.write.start(done)
            self.wait()
            self.pending = self.pool.submit(self.write, reduced)

    def wait(self) -> None:
        """Wait for the block being written (re-raising its error)."""
        if self.pending is not None:
            self.pending.result()
            self.pending = None


def predict_block(task: BlockTask, source: ModelSource) -> BlockStats:
    """Predict block ``task`` with the network from ``source``; write its pieces; return what it did."""
    killpoint.unit_started()
    start = time.perf_counter()
    grid = task.grid
    scene = task.scene
    cols = grid.col_starts_between(task.col0, task.col1)
    ext0, ext1 = cols[0], min(cols[-1] + task.size, scene.width)
    runner = ModelRunner(source.load(), task.device, task.tta)
    stats = BlockStats(class_pixels=np.zeros(len(task.bundle.classes), dtype=np.int64))
    acc = accumulator_for(runner.device, len(task.bundle.classes), ext0, ext1, scene.height, task.size)
    cancel = task.stage / CANCEL_MARK

    with (
        torch_threads(task.threads) if runner.device.type == "cpu" else nullcontext(),
        rasterio.Env(GDAL_CACHEMAX=task.cache_bytes),
        open_scene(scene) as src,
        BlockPieces(task.kinds, task.pieces, scene.grid, task.col0, task.col1) as pieces,
        ThreadPoolExecutor(1, thread_name_prefix="read") as reads,
        ThreadPoolExecutor(1, thread_name_prefix="write") as writes,
    ):
        reader = RowBandReader(src, scene, task.bundle, ext0, ext1, task.size)
        queue = _WriteQueue(writes, _RowWriter(task, pieces, ext0, stats))
        rows = grid.row_starts
        next_band: Future[RowBand] = reads.submit(reader.read, rows[0])
        for i, row0 in enumerate(rows):
            if cancel.exists():
                raise Cancelled(f"{scene.path.name}: block {task.index} stopped")
            band = next_band.result()
            if i + 1 < len(rows):
                next_band = reads.submit(reader.read, rows[i + 1])
            queue.put(list(acc.advance(row0)))
            acc.set_valid(row0, band.valid)
            _predict_row(task, grid, runner, band, row0, cols, acc, stats)
        queue.put(list(acc.finish()))
        queue.wait()
    stats.seconds = time.perf_counter() - start
    log.debug("%s block %d: %d windows (%d skipped) in %.1f s (model %.1f s)", scene.path.name, task.index,
              stats.windows, stats.skipped, stats.seconds, stats.model_seconds)
    return stats


def _predict_row(task: BlockTask, grid: WindowGrid, runner: ModelRunner, band: RowBand, row0: int,
                 cols: list[int], acc: Accumulator, stats: BlockStats) -> None:
    """Run the windows of one row (those with a valid pixel) in batches; blend their probabilities into ``acc``."""
    tiles = []
    for col0 in cols:
        data, valid = band.tile(row0, col0, task.size)
        if valid.any():
            tiles.append((col0, data, valid.shape))
        else:
            stats.skipped += 1
    for b in range(0, len(tiles), task.batch_size):
        batch = tiles[b : b + task.batch_size]
        t0 = time.perf_counter()
        prob = runner.forward(runner.upload([data for _, data, _ in batch]))
        stats.model_seconds += time.perf_counter() - t0
        stats.windows += len(batch)
        for (col0, _, (h, w)), p in zip(batch, prob, strict=True):
            weight = grid.weight(Window(col0, row0, task.size, task.size))[:h, :w]
            acc.add(p[:, :h, :w], weight, row0, col0)
