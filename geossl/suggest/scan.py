"""One pass of the model over the part of a scene that holds unlabeled area, reduced to per-cell sums.

The prediction machinery of ``geossl predict`` is reused as is: the scene is read in row bands
(:class:`~geossl.predict.reader.RowBandReader`, normalised with the checkpoint's statistics), windows of the
model's patch size overlapping by the checkpoint's overlap (:class:`~geossl.windows.WindowGrid`) go through
the network in batches (:class:`~geossl.predict.runner.ModelRunner`, with ``tta`` averaging the four flips) and
are blended with the Hann weight (:class:`~geossl.predict.accumulate.RowAccumulator`). Each finished row block
is reduced at once to sums over square cells of ``cell`` pixels: the valid pixels, and per predicted class its
pixels and the sum of their score: their uncertainty, or with ``novelty`` their distance to the labeled pixels of
the predicted class (:mod:`.novelty`; the block's bands are read again for it). Memory is one window row plus
``2K + 1`` numbers a cell, whatever the scene's size; a candidate window of ``m × m`` cells is then a sum of cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geossl.models import ModelBundle
from geossl.predict.accumulate import RowAccumulator, RowBlock
from geossl.predict.reader import RowBand, RowBandReader, open_scene
from geossl.predict.runner import ModelRunner
from geossl.predict.scene import Scene
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
    stats = CellStats.empty(area, cell, k)
    with open_scene(scene) as src:
        reader = RowBandReader(src, scene, bundle, area.col0, area.col0 + area.width, size)
        measure = _measure(src, scene, bundle, area, method, spectra)
        for row in grid.row_starts:
            for done in acc.advance(row):
                stats.add(done, measure(done))
            band = _local(reader.read(area.row0 + row), row, min(size, area.height - row))
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
            stats.add(done, measure(done))
    return stats


def _measure(src: DatasetReader | WarpedVRT, scene: Scene, bundle: ModelBundle, area: Area, method: Method,
             spectra: ClassSpectra | None) -> Callable[[RowBlock], np.ndarray]:
    """The per-pixel score of finished rows: their uncertainty, or their novelty (their bands read again)."""
    if method != "novelty":
        how: Uncertainty = method
        return lambda block: uncertainty(block.prob, how)
    if spectra is None:
        raise ValueError("method 'novelty' needs the labeled pixels' spectra")
    labeled = spectra

    def novelty(block: RowBlock) -> np.ndarray:
        rows = RowBandReader(src, scene, bundle, area.col0, area.col0 + area.width, block.valid.shape[0])
        return labeled.novelty(rows.read(area.row0 + block.row0).data, block.prob.argmax(axis=0))

    return novelty


def _local(band: RowBand, row: int, height: int) -> RowBand:
    """A row band read at scene coordinates, seen from the area: top row ``row``, ``height`` rows, column 0."""
    return RowBand(row0=row, col0=0, data=band.data[:, :height], valid=band.valid[:height])
