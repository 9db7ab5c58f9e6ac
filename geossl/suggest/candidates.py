"""Candidate windows: ``size`` px squares on a grid of half-window steps, wholly inside the unlabeled area.

A window is ``m × m`` cells of ``cell = size / m`` pixels (``m`` = :data:`CELLS_PER_WINDOW`), so neighbouring
candidates are ``cell`` pixels apart and a window's sums are the sums of its cells
(:class:`geossl.suggest.scan.CellStats`). A candidate is kept when every one of its pixels is valid (no
nodata), its footprint lies inside the unlabeled area (``covers``) and it shares no area with the labeled,
validation or test areas. Its uncertainty is the mean of its pixels' uncertainty, its class mix the share of
its pixels predicted as each class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.lib.stride_tricks import sliding_window_view
from shapely.geometry.base import BaseGeometry

from geossl.predict.scene import Scene
from geossl.suggest.scan import Area, CellStats

#: Cells along a window's side: candidates step by half a window.
CELLS_PER_WINDOW = 2


@dataclass
class Candidates:
    """Candidate windows, one row each: where (scene index, top-left pixel), footprint, uncertainty, class mix."""

    scene: np.ndarray  # (N,) int: index of the scene
    row: np.ndarray  # (N,) int: top row in the scene
    col: np.ndarray  # (N,) int: left column in the scene
    boxes: np.ndarray  # (N, 4) float: minx, miny, maxx, maxy in the catalog CRS
    uncertainty: np.ndarray  # (N,) float: mean per-pixel uncertainty
    shares: np.ndarray  # (N, K) float: share of the window's pixels predicted as each class

    def __len__(self) -> int:
        return len(self.row)

    def take(self, index: np.ndarray) -> Candidates:
        """The candidates at ``index``, in that order."""
        return Candidates(self.scene[index], self.row[index], self.col[index], self.boxes[index],
                          self.uncertainty[index], self.shares[index])

    @classmethod
    def concat(cls, parts: list[Candidates], classes: int) -> Candidates:
        """All candidates of ``parts`` in order."""
        if not parts:
            return cls(np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), np.zeros((0, 4)), np.zeros(0),
                       np.zeros((0, classes)))
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("scene", "row", "col", "boxes", "uncertainty", "shares")))


def window_candidates(stats: CellStats, area: Area, scene: Scene, index: int, size: int,
                      inside: BaseGeometry, outside: BaseGeometry | None) -> Candidates:
    """The windows of ``area`` that are fully valid, inside ``inside`` and share no area with ``outside``."""
    m = CELLS_PER_WINDOW
    k = stats.classes.shape[-1]
    if stats.valid.shape[0] < m or stats.valid.shape[1] < m:
        return Candidates.concat([], k)
    valid = sliding_window_view(stats.valid, (m, m)).sum(axis=(-2, -1))
    total = sliding_window_view(stats.uncertainty, (m, m)).sum(axis=(-2, -1))
    counts = sliding_window_view(stats.classes, (m, m), axis=(0, 1)).sum(axis=(-2, -1))
    i, j = np.nonzero(valid == size * size)  # a full window: no nodata, not cut by the area's edge
    rows, cols = area.row0 + i * stats.cell, area.col0 + j * stats.cell
    t = scene.grid.transform
    boxes = np.stack([t.c + cols * t.a, t.f + (rows + size) * t.e, t.c + (cols + size) * t.a, t.f + rows * t.e],
                     axis=1).reshape(-1, 4)
    keep = inside_area(boxes, inside, outside)
    return Candidates(scene=np.full(int(keep.sum()), index), row=rows[keep], col=cols[keep], boxes=boxes[keep],
                      uncertainty=total[i, j][keep] / (size * size),
                      shares=counts[i, j][keep].reshape(-1, k) / (size * size))


def inside_area(boxes: np.ndarray, inside: BaseGeometry, outside: BaseGeometry | None) -> np.ndarray:
    """Boxes covered by ``inside`` whose intersection with ``outside`` has no area."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=bool)
    geoms = shapely.box(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3])
    shapely.prepare(inside)
    keep = shapely.covers(inside, geoms)
    if outside is not None and not outside.is_empty and keep.any():
        touched = keep & shapely.intersects(outside, geoms)
        if touched.any():
            keep[touched] = shapely.area(shapely.intersection(geoms[touched], outside)) == 0
    return keep


def overlapping(a: Candidates, i: int, size: int) -> np.ndarray:
    """Which candidates share pixels with candidate ``i`` (itself included)."""
    return (a.scene == a.scene[i]) & (np.abs(a.row - a.row[i]) < size) & (np.abs(a.col - a.col[i]) < size)
