"""Split regions: the catalog's split polygons as separate parts, and their labeled pixels.

The catalog stores one GeoJSON feature per block (``blocks`` splits) or per split (``regions`` splits, possibly
multipolygons). Samplers need each connected part on its own: torchgeo's samplers clip their index to ONE
polygon and then draw from its bounding box, so the bounding box of scattered blocks would include the blocks
between them. :func:`split_regions` therefore explodes every feature into its polygons.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
from rasterio.enums import Resampling
from shapely import Polygon
from shapely.geometry import shape

from geossl.catalog import Catalog
from geossl.manifest import Split
from geossl.selection import LabeledSelection, choose_labeled
from geossl.windows import touched_pixels

log = logging.getLogger(__name__)

#: Regions larger than this are counted on a decimated read (counts are scaled back to full resolution).
MAX_COUNT_PIXELS = 4_000_000


@dataclass(frozen=True)
class Region:
    """One polygon of one split (None: of none, e.g. a whole scene), in the catalog CRS."""

    key: str
    split: Split | None
    geometry: Polygon

    def __post_init__(self) -> None:
        if self.split is not None:
            object.__setattr__(self, "split", Split(self.split))

    @property
    def is_train(self) -> bool:
        """True for a region of a train split (``labeled`` or ``unlabeled``)."""
        return self.split is not None and self.split.is_train


@dataclass(frozen=True)
class PixelGrid:
    """The catalog's pixel grid: top-left corner and pixel size; rows grow southwards.

    A window of ``size`` pixels at ``(row, col)`` covers ``x in [left + col*xres, left + (col+size)*xres]`` and
    ``y in [top - (row+size)*yres, top - row*yres]``.
    """

    left: float
    top: float
    xres: float
    yres: float

    def window_bounds(self, row: int, col: int, size: int) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the window."""
        xmin = self.left + col * self.xres
        ymax = self.top - row * self.yres
        return xmin, ymax - size * self.yres, xmin + size * self.xres, ymax

    def snap(self, xmin: float, ymax: float) -> tuple[int, int]:
        """``(row, col)`` of the pixel corner nearest to ``(xmin, ymax)``."""
        return round((self.top - ymax) / self.yres), round((xmin - self.left) / self.xres)


def split_regions(catalog: Catalog) -> list[Region]:
    """Every polygon of every split feature, keyed ``<split>-<feature>-<part>`` (or ``r<row>c<col>`` for blocks)."""
    regions = []
    for i, feature in enumerate(catalog.splits.features):
        props = feature.properties
        geom = shape(feature.geometry)
        parts = list(getattr(geom, "geoms", [geom]))
        block = props.row is not None and props.col is not None
        base = f"r{props.row}c{props.col}" if block else f"{props.split}-{i}"
        for j, part in enumerate(p for p in parts if isinstance(p, Polygon) and not p.is_empty):
            regions.append(Region(key=base if len(parts) == 1 else f"{base}-{j}", split=props.split, geometry=part))
    return regions


def region_class_counts(label_paths: list[Path], regions: list[Region], ids: list[int]) -> dict[str, np.ndarray]:
    """Pixels of each class (in ``ids`` order) inside each region, summed over the label COGs, by region key."""
    counts = class_counts(label_paths, [r.geometry for r in regions], ids)
    return {r.key: row for r, row in zip(regions, counts, strict=True)}


def class_counts(label_paths: list[Path], polygons: Sequence[Polygon], ids: list[int]) -> np.ndarray:
    """Pixels of each class (in ``ids`` order) inside each polygon, summed over the label COGs: (polygons, ids).

    A pixel is inside when its centre is. A polygon over more than :data:`MAX_COUNT_PIXELS` pixels is counted on
    a decimated (nearest) read, its counts scaled back to full resolution. Ingest judges its blocks and training
    its regions with this one count.
    """
    counts = np.zeros((len(polygons), len(ids)), dtype=np.int64)
    lut = np.full(65536, -1, dtype=np.int64)
    lut[np.asarray(ids)] = np.arange(len(ids))
    for path in label_paths:
        with rasterio.open(path) as src:
            for i, polygon in enumerate(polygons):
                counts[i] += _count_in(src, polygon, lut, len(ids))
    return counts


def _count_in(src: rasterio.io.DatasetReader, polygon: Polygon, lut: np.ndarray, k: int) -> np.ndarray:
    """Pixels of each of the ``k`` classes (``lut``: raw id → class index or -1) of ``src`` inside ``polygon``."""
    window = _pixel_window(polygon.bounds, src)
    if window is None:
        return np.zeros(k, dtype=np.int64)
    scale = max(1, math.ceil(math.sqrt(window.width * window.height / MAX_COUNT_PIXELS)))
    shape_out = (max(1, int(window.height) // scale), max(1, int(window.width) // scale))
    data = src.read(1, window=window, out_shape=shape_out, resampling=Resampling.nearest)
    transform = _window_transform(window, src.transform) @ rasterio.Affine.scale(
        window.width / shape_out[1], window.height / shape_out[0])
    inside = rasterio.features.geometry_mask([polygon], shape_out, transform, invert=True)
    cls = lut[data[inside].astype(np.int64)]
    return np.bincount(cls[cls >= 0], minlength=k) * scale * scale


def _window_transform(window: rasterio.windows.Window, transform: rasterio.Affine) -> rasterio.Affine:
    """``src.window_transform(window)``, computed as rasterio does but with ``@`` (rasterio's ``*`` warns)."""
    x, y = transform @ (window.col_off, window.row_off)
    return rasterio.Affine.translation(x - transform.c, y - transform.f) @ transform


def _pixel_window(bounds: tuple[float, float, float, float], src: rasterio.io.DatasetReader
                  ) -> rasterio.windows.Window | None:
    """The whole pixels of ``src`` that ``bounds`` touches (clipped to the raster), or None."""
    touched = touched_pixels(src.transform, src.width, src.height, bounds)
    if touched is None:
        return None
    row0, col0, row1, col1 = touched
    return rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)


def reassign_labeled(regions: list[Region], counts: dict[str, np.ndarray], fraction: float, seed: int,
                     selection: LabeledSelection = "random") -> list[Region]:
    """Redraw which train regions keep their labels: ``max(1, round(fraction * n_train))`` of them.

    Train regions are those of the ``labeled`` and ``unlabeled`` splits; only those with labeled pixels can
    be chosen, in a seeded random order, by ``selection`` (:func:`geossl.selection.choose_labeled`); the
    other train regions become ``unlabeled``. Validation and test regions are untouched.
    """
    train = [r for r in regions if r.is_train]
    candidates = [r for r in train if counts.get(r.key, np.zeros(1)).sum() > 0]
    order = [candidates[i] for i in np.random.default_rng(seed).permutation(len(candidates))]
    n_labeled = min(len(order), max(1, round(fraction * len(train))))
    width = max((len(c) for c in counts.values()), default=1)
    table = np.array([counts[r.key] for r in order]).reshape(len(order), width)
    chosen = {order[i].key for i in choose_labeled(table, n_labeled, selection)}
    log.info("label fraction %.3g: %d of %d train regions labeled", fraction, n_labeled, len(train))
    return labeled_as(regions, chosen)


def labeled_as(regions: list[Region], labeled: set[str]) -> list[Region]:
    """``regions`` with exactly the train regions keyed ``labeled`` labeled, the other train regions unlabeled.

    Validation and test regions are untouched.
    """
    return [Region(key=r.key, split=Split.LABELED if r.key in labeled else Split.UNLABELED, geometry=r.geometry)
            if r.is_train else r for r in regions]


#: Labeled pixel positions kept per class for class-balanced sampling (evenly thinned beyond this).
MAX_POSITIONS_PER_CLASS = 20_000
#: Rows of a label COG read at once when collecting positions (bounds the memory of a large region).
_STRIP_ROWS = 1024


@dataclass(frozen=True)
class ClassPositions:
    """Map coordinates of labeled pixels, per class: ``xy[c]`` (n, 2) float64 pixel centres, ``region[c]`` (n,).

    ``region`` indexes the region list the positions were collected from. A class absent from every region has
    empty arrays. At most :data:`MAX_POSITIONS_PER_CLASS` positions per class (evenly thinned, no randomness).
    """

    xy: tuple[np.ndarray, ...]
    region: tuple[np.ndarray, ...]

    def present(self) -> list[int]:
        """Indices of the classes with at least one position."""
        return [c for c, a in enumerate(self.region) if len(a)]


def labeled_positions(label_paths: list[Path], regions: list[Region], ids: list[int],
                      cap: int = MAX_POSITIONS_PER_CLASS) -> ClassPositions:
    """Where each class (in ``ids`` order) has labeled pixels inside ``regions``, read once from the label COGs."""
    lut = np.full(65536, -1, dtype=np.int64)
    lut[np.asarray(ids)] = np.arange(len(ids))
    xy: list[list[np.ndarray]] = [[] for _ in ids]
    owner: list[list[np.ndarray]] = [[] for _ in ids]
    for path in label_paths:
        with rasterio.open(path) as src:
            for i, region in enumerate(regions):
                window = _pixel_window(region.geometry.bounds, src)
                for strip in _strips(window):
                    for c, pts in _strip_positions(src, strip, region.geometry, lut):
                        xy[c].append(_thin(pts, cap))
                        owner[c].append(np.full(len(xy[c][-1]), i, dtype=np.int32))
    keep = [_thin(np.arange(sum(len(a) for a in per_class)), cap) for per_class in xy]
    return ClassPositions(
        xy=tuple(np.concatenate(a or [np.zeros((0, 2))])[k] for a, k in zip(xy, keep, strict=True)),
        region=tuple(np.concatenate(a or [np.zeros(0, np.int32)])[k] for a, k in zip(owner, keep, strict=True)))


def _strips(window: rasterio.windows.Window | None) -> list[rasterio.windows.Window]:
    """``window`` cut into strips of at most :data:`_STRIP_ROWS` rows (none for no window)."""
    if window is None:
        return []
    row0, row1 = int(window.row_off), int(window.row_off + window.height)
    return [rasterio.windows.Window(window.col_off, r, window.width, min(_STRIP_ROWS, row1 - r))
            for r in range(row0, row1, _STRIP_ROWS)]


def _strip_positions(src: rasterio.io.DatasetReader, strip: rasterio.windows.Window, geometry: Polygon,
                     lut: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``(class, (n, 2) pixel centres)`` of the labeled pixels of one strip that lie inside ``geometry``."""
    data = src.read(1, window=strip)
    transform = _window_transform(strip, src.transform)
    inside = rasterio.features.geometry_mask([geometry], data.shape, transform, invert=True)
    cls = np.where(inside, lut[data.astype(np.int64)], -1)
    out = []
    for c in np.unique(cls[cls >= 0]):
        rows, cols = np.nonzero(cls == c)
        xs, ys = transform @ (cols + 0.5, rows + 0.5)
        out.append((int(c), np.column_stack([xs, ys]).astype(np.float64)))
    return out


def _thin(a: np.ndarray, cap: int) -> np.ndarray:
    """At most ``cap`` elements of ``a``, evenly spaced (all of them when there are fewer)."""
    return a if len(a) <= cap else a[np.linspace(0, len(a) - 1, cap).round().astype(np.int64)]
