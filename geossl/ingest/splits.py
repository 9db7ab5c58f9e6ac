"""Train / validation / test splits as polygons in the target CRS.

``blocks``: the region's bounding box is cut into ``rows`` x ``cols`` equal blocks. Blocks holding labels
(judged on the labeled pixels inside each block, counted as training counts them:
:func:`geossl.data.regions.class_counts`) are shuffled with the seed; the first ``round(val_fraction * n)`` go
to ``val``, the next ``round(test_fraction * n)`` to ``test``, and of the remaining train blocks
``max(1, round(labeled_fraction * n_train))`` are ``labeled`` (chosen by ``labeled_selection``,
:mod:`geossl.selection`); every other block (with or without labels) is ``unlabeled``. Blocks never overlap, so
the splits are spatially disjoint.

``regions``: boxes and vector files drawn by hand, one list per split.

Drawn labels (``labels.drawn``) then move the area they cover from ``unlabeled`` to ``labeled``
(:func:`with_drawn`); blocks are assigned from the labels without them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.crs import CRS
from shapely import Polygon, box, difference, intersection, unary_union
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geossl.catalog import SplitFeature, SplitProperties
from geossl.data.regions import class_counts
from geossl.errors import InputError
from geossl.io.cog import Grid
from geossl.manifest import BlockSplits, RegionSplits, Split
from geossl.selection import choose_labeled

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]
#: A block counts as labeled when at least this fraction of it carries labels.
MIN_LABELED_SHARE = 0.05


def region_bounds(grids: list[Grid]) -> Bounds:
    """Bounding box of all scene grids (same CRS)."""
    b = np.array([g.bounds for g in grids])
    return (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max()))


def block_layout(cfg: BlockSplits, bounds: Bounds) -> tuple[Bounds, int, int]:
    """The blocks' extent, rows and columns: ``cfg.rows`` x ``cfg.cols`` over ``bounds``, or squares of ``cfg.size``.

    Square blocks start at the north-west corner of ``bounds``; the extent grows east and south to whole blocks.
    """
    if cfg.size is None:
        return bounds, cfg.rows, cfg.cols
    minx, miny, maxx, maxy = bounds
    cols, rows = max(1, math.ceil((maxx - minx) / cfg.size - 1e-9)), max(1, math.ceil((maxy - miny) / cfg.size - 1e-9))
    return (minx, maxy - rows * cfg.size, minx + cols * cfg.size, maxy), rows, cols


def block_boxes(bounds: Bounds, rows: int, cols: int) -> list[Polygon]:
    """The ``rows`` x ``cols`` blocks of ``bounds``, row by row from the north-west corner."""
    minx, miny, maxx, maxy = bounds
    bw, bh = (maxx - minx) / cols, (maxy - miny) / rows
    return [box(minx + c * bw, maxy - (r + 1) * bh, minx + (c + 1) * bw, maxy - r * bh)
            for r in range(rows) for c in range(cols)]


def block_class_shares(label_paths: list[Path], class_ids: list[int], bounds: Bounds, rows: int, cols: int,
                       pixel_area: float) -> np.ndarray:
    """Labeled area per block and class, as a fraction of the block's area: (rows, cols, classes).

    The labeled pixels of each block are counted by :func:`geossl.data.regions.class_counts` (the count
    training uses), each standing for ``pixel_area`` of the block.
    """
    minx, miny, maxx, maxy = bounds
    block_area = (maxx - minx) * (maxy - miny) / (rows * cols)
    counts = class_counts(label_paths, block_boxes(bounds, rows, cols), class_ids).astype(np.float64)
    return (counts * pixel_area / block_area).reshape(rows, cols, len(class_ids))


def block_splits(cfg: BlockSplits, bounds: Bounds, counts: np.ndarray) -> list[SplitFeature]:
    """GeoJSON features, one per block, with properties ``split``, ``row``, ``col``.

    ``bounds`` are the blocks' extent (:func:`block_layout`); ``counts`` is :func:`block_class_shares`'
    (rows, cols, classes) labeled share per block and class.
    """
    assign = _assign_blocks(cfg, counts)
    rows, cols = counts.shape[:2]
    blocks = block_boxes(bounds, rows, cols)
    return [SplitFeature(geometry=mapping(geom), properties=SplitProperties(
                split=assign.get(divmod(i, cols), Split.UNLABELED), row=i // cols, col=i % cols))
            for i, geom in enumerate(blocks)]


def _assign_blocks(cfg: BlockSplits, counts: np.ndarray) -> dict[tuple[int, int], Split]:
    """The split of every ``(row, col)`` block that is not ``unlabeled`` (see the module docstring)."""
    share = counts.sum(axis=-1)
    rows, cols = share.shape
    rng = np.random.default_rng(cfg.seed)
    with_labels = [(r, c) for r in range(rows) for c in range(cols) if share[r, c] >= MIN_LABELED_SHARE]
    order = [with_labels[i] for i in rng.permutation(len(with_labels))]
    n = len(order)
    n_val, n_test = round(cfg.val_fraction * n), round(cfg.test_fraction * n)
    assign = {rc: Split.VAL for rc in order[:n_val]}
    assign.update({rc: Split.TEST for rc in order[n_val : n_val + n_test]})
    train = order[n_val + n_test :]
    n_train_blocks = len(train)
    n_labeled = max(1, round(cfg.labeled_fraction * n_train_blocks))
    train_counts = np.array([counts[rc] for rc in train]).reshape(len(train), counts.shape[-1])
    for i in choose_labeled(train_counts, n_labeled, cfg.labeled_selection):
        assign[train[i]] = Split.LABELED
    return assign


def region_splits(cfg: RegionSplits, files: dict[str, Path], crs: CRS) -> list[SplitFeature]:
    """GeoJSON features, one per split, from boxes (target CRS) and vector files (reprojected)."""
    features = []
    for split in Split:
        geoms = []
        for region in cfg.of(split):
            if isinstance(region, list):
                geoms.append(box(*region))
            else:
                geoms.extend(_read_polygons(files[region], crs))
        if geoms:
            features.append(SplitFeature(geometry=mapping(unary_union(geoms)),
                                         properties=SplitProperties(split=split)))
    return features


def _read_polygons(path: Path, crs: CRS) -> list[Polygon]:
    """The polygons of a vector file, reprojected to ``crs``."""
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
        raise InputError(path, f"cannot read split polygons: {str(exc).splitlines()[0]}") from exc
    if frame.crs is None:
        raise InputError(path, "split polygons have no CRS")
    return list(frame.to_crs(crs).geometry.values)


def with_drawn(features: list[SplitFeature], drawn: BaseGeometry) -> list[SplitFeature]:
    """The split features with the drawn labels' area moved from ``unlabeled`` to ``labeled``.

    Each unlabeled feature loses the area of the polygons in ``drawn`` (target CRS); what they lost is added as
    one ``labeled`` feature (without ``row``/``col``). Drawn polygons over other splits stay labels there but
    change no split, so validation and test are never trained on.
    """
    unlabeled = [shape(f.geometry) for f in features if f.properties.split == Split.UNLABELED]
    gained = intersection(drawn, unary_union(unlabeled)) if unlabeled else Polygon()
    outside = drawn.area - gained.area
    if outside > 1e-9 * max(drawn.area, 1.0):
        log.warning("%.1f %% of the drawn labels' area lies outside the unlabeled split; only the rest joins the "
                    "labeled split", 100 * outside / drawn.area)
    out = []
    for feature in features:
        if feature.properties.split == Split.UNLABELED:
            rest = difference(shape(feature.geometry), drawn)
            if rest.is_empty:
                continue
            feature = feature.model_copy(update={"geometry": mapping(rest)})
        out.append(feature)
    if not gained.is_empty:
        out.append(SplitFeature(geometry=mapping(gained), properties=SplitProperties(split=Split.LABELED)))
    return out
