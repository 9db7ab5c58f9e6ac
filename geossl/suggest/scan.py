"""One pass of the model over the part of a scene that holds unlabeled area, reduced to per-cell sums.

The prediction machinery of ``geossl predict`` is reused as is: the scene is read in row bands
(:class:`~geossl.predict.reader.RowBandReader`, normalised with the checkpoint's statistics), windows of the
model's patch size overlapping by the checkpoint's overlap (:class:`~geossl.windows.WindowGrid`) go through
the network in batches (:class:`~geossl.predict.runner.ModelRunner`, with ``tta`` averaging the four flips) and
are blended with the Hann weight (:class:`~geossl.predict.accumulate.RowAccumulator`). Each finished row block
is reduced at once to sums over square cells of ``cell`` pixels: the valid pixels, and per predicted class its
pixels and the sum of their score: their uncertainty, or with ``novelty`` their distance to the labeled pixels of
the predicted class (:mod:`.novelty`, from the bands already read: each is kept until its rows are finished).
Memory is a window row or two plus ``2K + 1`` numbers a cell, whatever the scene's size; a candidate window of
``m × m`` cells is then a sum of cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rasterio.windows import Window

from geossl.models import ModelBundle
from geossl.predict.accumulate import RowAccumulator, RowBlock
from geossl.predict.reader import RowBand, RowBandReader, open_scene
from geossl.predict.runner import ModelRunner
from geossl.predict.scene import Scene
from geossl.progress import report
from geossl.suggest.novelty import ClassSpectra
from geossl.suggest.options import Method, Uncertainty
from geossl.suggest.uncertainty import uncertainty
from geossl.windows import WindowGrid, touched_pixels


@dataclass(frozen=True)
class Area:
    """The scene's pixels ``[row0, row0 + height) × [col0, col0 + width)``."""

    row0: int
    col0: int
    height: int
    width: int


def covering_area(scene: Scene, bounds: tuple[float, float, float, float], min_side: int) -> Area | None:
    """The scene's pixels that ``bounds`` (CRS units) touches, grown to ``min_side`` where the scene allows.

    None when ``bounds`` misses the scene.
    """
    touched = touched_pixels(scene.grid.transform, scene.width, scene.height, bounds)
    if touched is None:
        return None
    row0, col0, row1, col1 = touched
    row0, row1 = _grow(row0, row1, min_side, scene.height)
    col0, col1 = _grow(col0, col1, min_side, scene.width)
    return Area(row0, col0, row1 - row0, col1 - col0)


def _grow(a: int, b: int, side: int, n: int) -> tuple[int, int]:
    """``[a, b)`` grown to at least ``side`` (at most ``n``), kept inside ``[0, n)``."""
    if b - a >= side:
        return a, b
    b = min(n, a + side)
    return max(0, b - side), b


@dataclass
class CellStats:
    """Sums over square cells of ``cell`` pixels laid from the area's top-left corner."""

    cell: int
    uncertainty: np.ndarray  # (rows, cols, K) float64: the per-pixel score summed over the valid pixels of each class
    valid: np.ndarray  # (rows, cols) int64: valid pixels
    classes: np.ndarray  # (rows, cols, K) int64: valid pixels predicted as each class

    @classmethod
    def empty(cls, area: Area, cell: int, classes: int) -> CellStats:
        """Zero sums over the cells of ``area`` (the last row and column of cells may be partial)."""
        rows, cols = -(-area.height // cell), -(-area.width // cell)
        return cls(cell, np.zeros((rows, cols, classes)), np.zeros((rows, cols), dtype=np.int64),
                   np.zeros((rows, cols, classes), dtype=np.int64))

    def add(self, block: RowBlock, score: np.ndarray) -> None:
        """Add the finished rows of ``block`` (rows and columns relative to the area) and their ``score``."""
        h, w = block.valid.shape
        rows, cols, k = self.classes.shape
        flat = ((block.row0 + np.arange(h)) // self.cell)[:, None] * cols + (np.arange(w) // self.cell)[None, :]
        where = flat[block.valid]
        label = where * k + block.prob.argmax(axis=0)[block.valid]
        self.valid += np.bincount(where, minlength=rows * cols).reshape(rows, cols)
        self.classes += np.bincount(label, minlength=rows * cols * k).reshape(rows, cols, k)
        self.uncertainty += np.bincount(label, weights=score[block.valid],
                                        minlength=rows * cols * k).reshape(rows, cols, k)


def scan(scene: Scene, bundle: ModelBundle, runner: ModelRunner, area: Area, cell: int, method: Method,
         batch_size: int, spectra: ClassSpectra | None = None) -> CellStats:
    """Predict ``area`` of ``scene`` window by window (module docstring) and return its cell sums.

    ``spectra``: the labeled pixels that ``method="novelty"`` measures against.
    """
    size, k = bundle.patch_size, len(bundle.classes)
    grid = WindowGrid(area.height, area.width, size, min(bundle.overlap, size - 1))
    acc = RowAccumulator(k, 0, area.width, area.height, size)
    stats, bands = CellStats.empty(area, cell, k), KeptBands()
    measure = _measure(method, spectra)

    def finish(block: RowBlock) -> None:
        stats.add(block, measure(block, bands))
        bands.release(block.row0 + block.valid.shape[0])

    with open_scene(scene) as src:
        reader = RowBandReader(src, scene, bundle, area.col0, area.col0 + area.width, size)
        for i, row in enumerate(grid.row_starts):
            report(i / len(grid.row_starts), f"scoring {scene.path.name}")
            for done in acc.advance(row):
                finish(done)
            band = _local(reader.read(area.row0 + row), row, min(size, area.height - row))
            bands.keep(band)
            acc.set_valid(row, band.valid)
            tiles = []
            for col in grid.col_starts:
                data, valid = band.tile(row, col, size)
                if valid.any():  # a window without a valid pixel is not run (as in geossl predict)
                    tiles.append((col, data, valid.shape))
            for b in range(0, len(tiles), batch_size):
                batch = tiles[b : b + batch_size]
                prob = runner(np.stack([data for _, data, _ in batch]))
                for (col, _, (h, w)), p in zip(batch, prob, strict=True):
                    weight = grid.weight(Window(col, row, size, size))[:h, :w]
                    acc.add(p[:, :h, :w], weight, row, col)
        for done in acc.finish():
            finish(done)
    return stats


class KeptBands:
    """The row bands read so far whose rows are not all finished: a finished block's bands without a second read."""

    def __init__(self) -> None:
        self._bands: list[RowBand] = []

    def keep(self, band: RowBand) -> None:
        """Keep ``band`` (rows counted as the blocks count them) until :meth:`release` passes its last row."""
        self._bands.append(band)

    def rows(self, row0: int, height: int) -> np.ndarray:
        """The bands ``(C, height, w)`` of rows ``[row0, row0 + height)``, which the kept bands must cover."""
        out: np.ndarray | None = None
        covered = np.zeros(height, dtype=bool)
        for band in self._bands:
            top, bottom = max(row0, band.row0), min(row0 + height, band.row0 + band.data.shape[1])
            if top < bottom:
                if out is None:
                    out = np.empty((band.data.shape[0], height, band.data.shape[2]), dtype=band.data.dtype)
                out[:, top - row0 : bottom - row0] = band.data[:, top - band.row0 : bottom - band.row0]
                covered[top - row0 : bottom - row0] = True
        if out is None or not covered.all():
            raise ValueError(f"rows {row0}-{row0 + height} are not all in the kept bands")
        return out

    def release(self, row: int) -> None:
        """Drop the bands whose rows all lie above ``row``: every row before ``row`` is finished."""
        self._bands = [b for b in self._bands if b.row0 + b.data.shape[1] > row]


def _measure(method: Method, spectra: ClassSpectra | None) -> Callable[[RowBlock, KeptBands], np.ndarray]:
    """The per-pixel score of finished rows: their uncertainty, or their novelty (from their kept bands)."""
    if method != "novelty":
        how: Uncertainty = method
        return lambda block, _: uncertainty(block.prob, how)
    if spectra is None:
        raise ValueError("method 'novelty' needs the labeled pixels' spectra")
    labeled = spectra

    def novelty(block: RowBlock, bands: KeptBands) -> np.ndarray:
        rows = bands.rows(block.row0, block.valid.shape[0])
        return labeled.novelty(rows, block.prob.argmax(axis=0))

    return novelty


def _local(band: RowBand, row: int, height: int) -> RowBand:
    """A row band read at scene coordinates, seen from the area: top row ``row``, ``height`` rows, column 0."""
    return RowBand(row0=row, col0=0, data=band.data[:, :height], valid=band.valid[:height])
