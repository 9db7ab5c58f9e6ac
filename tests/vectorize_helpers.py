"""Small class rasters written by hand for the vectorize tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

CLASSES = [{"id": 1, "name": "Water", "color": "#476ba0"}, {"id": 2, "name": "Forest", "color": "#68aa63"},
           {"id": 3, "name": "Crops & fields", "color": "#dbd83d"}]


def write_classes(path: Path, data: np.ndarray, *, res: float = 10.0, crs: str | None = "EPSG:32633",
                  nodata: float | None = 0, block: int = 16, classes: list[dict] | None = CLASSES,
                  origin: tuple[float, float] = (500000.0, 5100000.0)) -> Path:
    """A tiled single-band GeoTIFF with the class metadata tag that ingest and predict write."""
    profile = {"driver": "GTiff", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype.name, "transform": from_origin(*origin, res, res), "nodata": nodata}
    if crs:
        profile["crs"] = crs
    if data.shape[0] >= block and data.shape[1] >= block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if classes is not None:
            dst.update_tags(1, classes=json.dumps(classes))
    return path


def speckled(size: int, seed: int, classes: int = 3, nodata_border: int = 3) -> np.ndarray:
    """Blocky classes with salt-and-pepper speckle and a nodata border: many small regions."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, classes + 1, (size // 8 + 1, size // 8 + 1))
    data = np.kron(coarse, np.ones((8, 8), dtype=np.int64))[:size, :size].astype(np.uint8)
    speck = rng.random((size, size)) < 0.08
    data[speck] = rng.integers(1, classes + 1, int(speck.sum()))
    data[:nodata_border] = 0
    data[:, :nodata_border] = 0
    return data
