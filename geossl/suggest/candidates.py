"""Candidate windows: ``size`` px squares on a grid of eighth-window steps, wholly inside the unlabeled area.

A window is ``m × m`` cells of ``cell = size / m`` pixels (``m`` = :data:`CELLS_PER_WINDOW`), so neighbouring
candidates are ``cell`` pixels apart and a window's sums are the sums of its cells
(:class:`geossl.suggest.scan.CellStats`). A window is placed when its footprint lies inside the unlabeled area
(``covers``) and shares no area with the labeled, validation or test areas (geometry only, before the model
runs), and kept as a candidate when every one of its pixels is valid (no nodata). Its uncertainty is the mean
of its pixels' uncertainty, its class mix the share of its pixels predicted as each class, and its priority
the mean of its pixels' uncertainty each times the weight ``w_c`` of the pixel's predicted class (all 1 unless
``--class-weighting balanced``, :mod:`geossl.classweights`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.lib.stride_tricks import sliding_window_view
from shapely.geometry.base import BaseGeometry

from geossl.predict.scene import Scene
from geossl.suggest.options import CELLS_PER_WINDOW
from geossl.suggest.scan import Area, CellStats


@dataclass
class Candidates:
    """Candidate windows, one row each: where (scene index, top-left pixel), footprint, uncertainty, class mix."""

    scene: np.ndarray  # (N,) int: index of the scene
    row: np.ndarray  # (N,) int: top row in the scene
    col: np.ndarray  # (N,) int: left column in the scene
    boxes: np.ndarray  # (N, 4) float: minx, miny, maxx, maxy in the catalog CRS
    uncertainty: np.ndarray  # (N,) float: mean per-pixel score (an uncertainty, or novelty)
    shares: np.ndarray  # (N, K) float: share of the window's pixels predicted as each class
    priority: np.ndarray  # (N,) float: mean per-pixel score × the weight of the pixel's predicted class

    def __len__(self) -> int:
        return len(self.row)

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index``, in that order."""
        return Candidates(self.scene[index], self.row[index], self.col[index], self.boxes[index],
                          self.uncertainty[index], self.shares[index], self.priority[index])

    @classmethod
    def concat(cls, parts: list[Candidates], classes: int) -> Candidates:
        """All candidates of ``parts`` in order."""
        if not parts:
            return cls(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0),
                       np.zeros((0, classes)), np.zeros(0))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("scene", "row", "col", "boxes", "uncertainty", "shares", "priority")))


@dataclass(frozen=True)
class Placement:
    """The windows of one scene that lie inside the unlabeled area: cell indices ``(i, j)`` of ``area``."""

    scene: int
    area: Area
    i: np.ndarray
    j: np.ndarray

    def __len__(self) -> int:
        return len(self.i)

    def origins(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The windows' top-left pixels ``(rows, cols)`` in the scene, for windows of ``size`` px."""
        cell = size // CELLS_PER_WINDOW
        return self.area.row0 + self.i * cell, self.area.col0 + self.j * cell


def place_windows(scene: Scene, index: int, area: Area, size: int, inside: BaseGeometry,
                  outside: BaseGeometry | None, step: int = 1) -> Placement:
    """The windows every ``step`` cells of ``area``'s grid that ``inside`` covers and ``outside`` does not touch.

    Decided from geometry alone, before any pixel is read; the nodata test waits for the pixels
    (:func:`window_candidates`).
    """
    cell = size // CELLS_PER_WINDOW
    i, j = (g.ravel() for g in np.meshgrid(np.arange(0, (area.height - size) // cell + 1, step),
                                           np.arange(0, (area.width - size) // cell + 1, step), indexing="ij"))
    keep = inside_area(_boxes(scene, area.row0 + i * cell, area.col0 + j * cell, size), inside, outside)
    return Placement(index, area, i[keep], j[keep])


def placed_windows(placement: Placement, scene: Scene, size: int, classes: int) -> Candidates:
    """The placed windows as candidates without model statistics (zero uncertainty, class mix and priority)."""
    rows, cols = placement.origins(size)
    n = len(placement)
    return Candidates(scene=np.full(n, placement.scene), row=rows, col=cols, boxes=_boxes(scene, rows, cols, size),
                      uncertainty=np.zeros(n), shares=np.zeros((n, classes)), priority=np.zeros(n))


def _boxes(scene: Scene, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """``(N, 4)`` footprints (CRS units) of the windows with top-left pixels ``(rows, cols)``."""
    t = scene.grid.transform
    return np.stack([t.c + cols * t.a, t.f + (rows + size) * t.e, t.c + (cols + size) * t.a, t.f + rows * t.e],
                    axis=1).reshape(-1, 4)


def window_candidates(stats: CellStats, placement: Placement, scene: Scene, size: int, weights: np.ndarray
                      ) -> Candidates:
    """The placed windows all of whose pixels are valid, with their uncertainty, class mix and priority.

    ``weights`` are the classes' weights ``w_c`` of the priority.
    """
    m = CELLS_PER_WINDOW
    k = stats.classes.shape[-1]
    i, j = placement.i, placement.j
    valid = sliding_window_view(stats.valid, (m, m)).sum(axis=(-2, -1))[i, j]
    per_class = sliding_window_view(stats.uncertainty, (m, m), axis=(0, 1)).sum(axis=(-2, -1))[i, j].reshape(-1, k)
    counts = sliding_window_view(stats.classes, (m, m), axis=(0, 1)).sum(axis=(-2, -1))[i, j].reshape(-1, k)
    full = valid == size * size  # no nodata pixel
    rows, cols = (origin[full] for origin in placement.origins(size))
    pixels = size * size
    return Candidates(scene=np.full(int(full.sum()), placement.scene), row=rows, col=cols,
                      boxes=_boxes(scene, rows, cols, size), uncertainty=per_class[full].sum(axis=1) / pixels,
                      shares=counts[full] / pixels, priority=per_class[full] @ np.asarray(weights, float) / pixels)


def inside_area(boxes: np.ndarray, inside: BaseGeometry, outside: BaseGeometry | None) -> np.ndarray:
    """Boxes covered by ``inside`` whose intersection with ``outside`` has no area."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    geoms = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    shapely.prepare(inside)
    keep = np.asarray(shapely.covers(inside, geoms), dtype=bool)
    if outside is not None and not outside.is_empty and keep.any():
        touched = keep & shapely.intersects(outside, geoms)
        if touched.any():
            keep[touched] = shapely.area(shapely.intersection(geoms[touched], outside)) == 0
    return keep


def overlapping(a: Candidates, i: int, size: int) -> np.ndarray:
    """Which candidates share pixels with candidate ``i`` (itself included)."""
    same: np.ndarray = (a.scene == a.scene[i]) & (np.abs(a.row - a.row[i]) < size) & (np.abs(a.col - a.col[i]) < size)
    return same
