"""The classic peer of the network rows: a per-pixel random forest on the bands, as GIS analysts run it today.

scikit-learn's ``RandomForestClassifier`` (200 trees, ``min_samples_leaf=2``) on the normalised bands of single
pixels, trained on the labeled pixels of the same labeled blocks as the network rows (the manifest's 1/8 or
every train block) and scored on exactly the pixels ``geossl evaluate`` scores (every labeled pixel of the val
and test blocks, read by the same grid loader) with geossl's own metrics (macro mIoU, OA, kappa, per-class IoU).
The normalisation is a per-band affine map, so the forest's splits are those it would find on raw values.

When a labeled split holds more than ``max_per_class`` pixels of a class, a seeded random subset of that many
is used (the others of that class are dropped; classes under the cap keep every pixel). ``max_per_class=None``
trains on every labeled pixel.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geossl.catalog import load_catalog
from geossl.data.module import labeled_pixels, plan_splits
from geossl.data.regions import Region
from geossl.train.metrics import confusion_matrix, segmentation_metrics

#: Row name → label_fraction (None: the manifest's labeled blocks), as the network rows draw them.
FOREST_ROWS = {"forest_1/8": None, "forest_full": 1.0}
TREES, MIN_SAMPLES_LEAF = 200, 2
PREDICT_CHUNK = 200_000


def split_pixels(catalog: Any, root: Path, regions: list[Region]) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``(N, C)`` float32 and class indices ``(N,)`` of every labeled pixel of ``regions``, each once."""
    xs, ys = zip(*labeled_pixels(catalog, root, regions), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def cap_per_class(y: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices of ``y`` keeping at most ``max_per_class`` (a seeded random subset) of each class."""
    if max_per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep.append(idx if len(idx) <= max_per_class else rng.choice(idx, max_per_class, replace=False))
    return np.sort(np.concatenate(keep))


def score(forest: Any, x: np.ndarray, y: np.ndarray, names: list[str]) -> dict[str, Any]:
    """geossl's segmentation metrics of the forest's predictions of ``x`` against ``y``."""
    pred = np.concatenate([forest.predict(x[i:i + PREDICT_CHUNK]) for i in range(0, len(x), PREDICT_CHUNK)])
    cm = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(y), len(names))
    return segmentation_metrics(cm, names)


def forest_runs(catalog_dir: Path, seed: int, threads: int, max_per_class: int | None) -> dict[str, dict]:
    """One record per :data:`FOREST_ROWS` row, keyed ``<row>@<seed>``, with the network rows' fields."""
    from sklearn.ensemble import RandomForestClassifier

    catalog = load_catalog(catalog_dir)
    names = [c.name for c in catalog.classes]
    torch.set_num_threads(threads)
    plan = plan_splits(catalog, catalog_dir, None, seed)
    evals = {split: split_pixels(catalog, catalog_dir, plan.of(split)) for split in ("val", "test")}
    runs = {}
    for row, fraction in FOREST_ROWS.items():
        plan = plan_splits(catalog, catalog_dir, fraction, seed)
        x, y = split_pixels(catalog, catalog_dir, plan.of("labeled"))
        keep = cap_per_class(y, max_per_class, seed)
        forest = RandomForestClassifier(n_estimators=TREES, min_samples_leaf=MIN_SAMPLES_LEAF, n_jobs=threads,
                                        random_state=seed)
        t0 = time.time()
        forest.fit(x[keep], y[keep])
        train_s = time.time() - t0
        val, test = (score(forest, *evals[s], names) for s in ("val", "test"))
        runs[f"{row}@{seed}"] = {"miou": test["miou"], "iou": test["iou"], "oa": test["oa"], "kappa": test["kappa"],
                                 "val_miou": val["miou"], "train_seconds": train_s, "train_pixels": int(len(keep)),
                                 "labeled_pixels": int(len(y)), "test_pixels": test["pixels"]}
    return runs
