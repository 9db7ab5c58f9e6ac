"""A prior map for the accuracy bench's ``--prior forest`` rows: the random forest of bench/forest.py.

The forest (the same one as the ``forest_1/8`` row: 200 trees, ``min_samples_leaf=2``, normalised bands of
single pixels) is trained on the labeled pixels of the catalog's labeled blocks only, so the prior uses no truth
outside them, and predicts every valid pixel of every scene. Each scene's prediction is written on the scene's
grid in the manifest's class ids (nodata: the ignore id) and named as the ``prior:`` of a copy of the manifest
(identity class mapping, paths made absolute), which is ingested into a catalog of its own: the same scene,
blocks and splits as the bench's catalog, plus the prior.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from rasterio.windows import Window

from bench.forest import MIN_SAMPLES_LEAF, PREDICT_CHUNK, TREES, cap_per_class, split_pixels
from geossl.catalog import Catalog, load_catalog
from geossl.data.module import plan_splits
from geossl.data.normalize import Normalizer
from geossl.manifest import load_manifest, resolve_inputs

#: Rows of a scene predicted at a time.
ROWS = 256


def train_forest(catalog: Catalog, root: Path, seed: int, threads: int, max_per_class: int | None
                 ) -> tuple[Any, int]:
    """The forest trained on the labeled split's pixels (capped per class), and how many pixels it saw."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = split_pixels(catalog, root, plan_splits(catalog, root, None, seed).of("labeled"))
    keep = cap_per_class(y, max_per_class, seed)
    forest = RandomForestClassifier(n_estimators=TREES, min_samples_leaf=MIN_SAMPLES_LEAF, n_jobs=threads,
                                    random_state=seed)
    return forest.fit(x[keep], y[keep]), int(len(keep))


def predict_scene(forest: Any, catalog: Catalog, image: Path, dst: Path) -> None:
    """The forest's class id of every valid pixel of ``image`` (the ignore id elsewhere), as a GeoTIFF at ``dst``."""
    normalizer = Normalizer.from_catalog(catalog)
    ids = np.array([c.id for c in catalog.classes])
    dtype = "uint8" if max(int(ids.max()), catalog.ignore_id) < 256 else "uint16"
    tmp = dst.with_name(f".{dst.name}.tmp")
    with rasterio.open(image) as src:
        profile = {"driver": "GTiff", "width": src.width, "height": src.height, "count": 1, "dtype": dtype,
                   "crs": src.crs, "transform": src.transform, "nodata": catalog.ignore_id, "compress": "deflate"}
        with rasterio.open(tmp, "w", **profile) as out:
            for r0 in range(0, src.height, ROWS):
                win = Window(0, r0, src.width, min(ROWS, src.height - r0))
                x, valid = normalizer(src.read(window=win))
                pixels = x.transpose(1, 2, 0)[valid]
                block = np.full(valid.shape, catalog.ignore_id, dtype=dtype)
                if len(pixels):
                    pred = np.concatenate([forest.predict(pixels[i:i + PREDICT_CHUNK])
                                           for i in range(0, len(pixels), PREDICT_CHUNK)])
                    block[valid] = ids[pred]
                out.write(block[None], window=win)
    os.replace(tmp, dst)


def prior_manifest(manifest_path: Path, data_root: Path | None, priors: list[Path], dst: Path) -> Path:
    """A copy of the manifest at ``dst`` with absolute input paths and ``priors`` as its ``prior:`` (identity ids)."""
    manifest = load_manifest(manifest_path)
    inputs = resolve_inputs(manifest, manifest_path, data_root)
    values = yaml.safe_load(manifest_path.read_text())
    values["imagery"]["paths"] = [str(p) for p in inputs.imagery]
    if manifest.labels is not None:
        values["labels"].update(rasters=[str(p) for p in inputs.label_rasters],
                                vectors=[str(p) for p in inputs.label_vectors])
    values["prior"] = {"rasters": [str(p.absolute()) for p in priors],
                       "classes": {c.id: c.id for c in manifest.classes}}
    dst.write_text(yaml.safe_dump(values, sort_keys=False))
    return dst


def forest_prior(manifest_path: Path, data_root: Path | None, catalog_dir: Path, out: Path, seed: int, threads: int,
                 max_per_class: int | None) -> tuple[Path, dict[str, Any]]:
    """Write the forest's prior of every scene under ``out`` and the manifest naming it; return the manifest.

    Also returns what the forest was trained on (``train_pixels``), for the results.
    """
    catalog = load_catalog(catalog_dir)
    forest, pixels = train_forest(catalog, catalog_dir, seed, threads, max_per_class)
    out.mkdir(parents=True, exist_ok=True)
    priors = []
    for scene in catalog.scenes:
        priors.append(out / f"{scene.id}.tif")
        predict_scene(forest, catalog, catalog.path_of(catalog_dir, scene.image), priors[-1])
    manifest = prior_manifest(manifest_path, data_root, priors, out / "manifest.yaml")
    return manifest, {"train_pixels": pixels, "seed": seed, "max_per_class": max_per_class}
