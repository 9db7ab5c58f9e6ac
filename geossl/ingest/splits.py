"""Train / validation / test splits as polygons in the target CRS.

``blocks``: the region's bounding box is cut into ``rows`` x ``cols`` equal blocks. Blocks holding labels
(judged on a decimated read of the aligned label rasters) are shuffled with the seed; the first
``round(val_fraction * n)`` go to ``val``, the next ``round(test_fraction * n)`` to ``test``, and of the
remaining train blocks ``max(1, round(labeled_fraction * n_train))`` are ``labeled`` (chosen by
``labeled_selection``, :mod:`geossl.selection`); every other block
(with or without labels) is ``unlabeled``. Blocks never overlap, so the splits are spatially disjoint.

``regions``: boxes and vector files drawn by hand, one list per split.

Drawn labels (``labels.drawn``) then move the area they cover from ``unlabeled`` to ``labeled``
(:func:`with_drawn`); blocks are assigned from the labels without them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.enums import Resampling
from shapely import Polygon, box, difference, intersection, unary_union
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geossl.errors import InputError
from geossl.io.cog import Grid
from geossl.manifest import BlockSplits, RegionSplits
from geossl.selection import choose_labeled

log = logging.getLogger(__name__)

SPLITS = ("labeled", "unlabeled", "val", "test")
#: A block counts as labeled when at least this fraction of it carries labels.
MIN_LABELED_SHARE = 0.05
_PREVIEW = 512


def region_bounds(grids: list[Grid]) -> tuple[float, float, float, float]:
    """Bounding box of all scene grids (same CRS)."""
    b = np.array([g.bounds for g in grids])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def block_class_counts(label_paths: list[Path], ignore: int, class_ids: list[int],
                       bounds: tuple[float, float, float, float], rows: int, cols: int) -> np.ndarray:
    """Labeled area per block and class, as a fraction of the block's area: (rows, cols, classes).

    Read from decimated reads of the label COGs' overviews (at most ~512 px a side), so a class smaller than
    a preview pixel can be missed.
    """
    minx, miny, maxx, maxy = bounds
    lookup = {cid: i for i, cid in enumerate(class_ids)}
    share = np.zeros((rows, cols, len(class_ids)))
    for path in label_paths:
        with rasterio.open(path) as src:
            scale = max(1, int(max(src.width, src.height) / _PREVIEW))
            h, w = max(1, src.height // scale), max(1, src.width // scale)
            data = src.read(1, out_shape=(h, w), resampling=Resampling.nearest)
            t = src.transform @ rasterio.Affine.scale(src.width / w, src.height / h)
        ys = t.f + (np.arange(h) + 0.5) * t.e
        xs = t.c + (np.arange(w) + 0.5) * t.a
        br = np.clip(((maxy - ys) / (maxy - miny) * rows).astype(int), 0, rows - 1)
        bc = np.clip(((xs - minx) / (maxx - minx) * cols).astype(int), 0, cols - 1)
        # Each preview pixel stands for |a * e| of area; a block holds (maxx-minx)(maxy-miny)/(rows*cols).
        weight = abs(t.a * t.e) * rows * cols / ((maxx - minx) * (maxy - miny))
        rr, cc = np.broadcast_to(br[:, None], (h, w)), np.broadcast_to(bc[None, :], (h, w))
        for cid, i in lookup.items():
            hit = data == cid
            if cid != ignore and hit.any():
                np.add.at(share[..., i], (rr[hit], cc[hit]), weight)
    return share


def block_splits(cfg: BlockSplits, bounds: tuple[float, float, float, float], counts: np.ndarray
                 ) -> list[dict[str, Any]]:
    """GeoJSON features, one per block, with properties ``split``, ``row``, ``col``.

    ``counts`` is :func:`block_class_counts`' (rows, cols, classes) labeled share per block and class.
    """
    share = counts.sum(axis=-1)
    minx, miny, maxx, maxy = bounds
    bw, bh = (maxx - minx) / cfg.cols, (maxy - miny) / cfg.rows
    rng = np.random.default_rng(cfg.seed)
    with_labels = [(r, c) for r in range(cfg.rows) for c in range(cfg.cols) if share[r, c] >= MIN_LABELED_SHARE]
    order = [with_labels[i] for i in rng.permutation(len(with_labels))]
    n = len(order)
    n_val, n_test = round(cfg.val_fraction * n), round(cfg.test_fraction * n)
    assign: dict[tuple[int, int], str] = {}
    for rc in order[:n_val]:
        assign[rc] = "val"
    for rc in order[n_val : n_val + n_test]:
        assign[rc] = "test"
    train = order[n_val + n_test :]
    n_train_blocks = cfg.rows * cfg.cols - n_val - n_test
    n_labeled = max(1, round(cfg.labeled_fraction * n_train_blocks))
    train_counts = np.array([counts[rc] for rc in train]).reshape(len(train), counts.shape[-1])
    for i in choose_labeled(train_counts, n_labeled, cfg.labeled_selection):
        assign[train[i]] = "labeled"
    features = []
    for r in range(cfg.rows):
        for c in range(cfg.cols):
            geom = box(minx + c * bw, maxy - (r + 1) * bh, minx + (c + 1) * bw, maxy - r * bh)
            split = assign.get((r, c), "unlabeled")
            features.append({"type": "Feature", "geometry": mapping(geom),
                             "properties": {"split": split, "row": r, "col": c}})
    return features


def region_splits(cfg: RegionSplits, files: dict[str, Path], crs: rasterio.crs.CRS) -> list[dict[str, Any]]:
    """GeoJSON features, one per split, from boxes (target CRS) and vector files (reprojected)."""
    features = []
    for split in SPLITS:
        geoms = []
        for region in getattr(cfg, split):
            if isinstance(region, list):
                geoms.append(box(*region))
                continue
            path = files[region]
            try:
                frame = gpd.read_file(path)
            except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
                raise InputError(path, f"cannot read split polygons: {str(exc).splitlines()[0]}") from exc
            if frame.crs is None:
                raise InputError(path, "split polygons have no CRS")
            geoms.extend(frame.to_crs(crs).geometry.values)
        if geoms:
            features.append({"type": "Feature", "geometry": mapping(unary_union(geoms)),
                             "properties": {"split": split}})
    return features


def with_drawn(features: list[dict[str, Any]], drawn: BaseGeometry) -> list[dict[str, Any]]:
    """The split features with the drawn labels' area moved from ``unlabeled`` to ``labeled``.

    Each unlabeled feature loses the area of the polygons in ``drawn`` (target CRS); what it lost is added as
    one ``labeled`` feature (property ``drawn: true``). Drawn polygons over other splits stay labels there but
    change no split, so validation and test are never trained on.
    """
    unlabeled = [shape(f["geometry"]) for f in features if f["properties"].get("split") == "unlabeled"]
    gained = intersection(drawn, unary_union(unlabeled)) if unlabeled else Polygon()
    outside = drawn.area - gained.area
    if outside > 1e-9 * max(drawn.area, 1.0):
        log.warning("%.1f %% of the drawn labels' area lies outside the unlabeled split; only the rest joins the "
                    "labeled split", 100 * outside / drawn.area)
    out = []
    for feature in features:
        if feature["properties"].get("split") == "unlabeled":
            rest = difference(shape(feature["geometry"]), drawn)
            if rest.is_empty:
                continue
            feature = {**feature, "geometry": mapping(rest)}
        out.append(feature)
    if not gained.is_empty:
        out.append({"type": "Feature", "geometry": mapping(gained), "properties": {"split": "labeled",
                                                                                    "drawn": True}})
    return out
