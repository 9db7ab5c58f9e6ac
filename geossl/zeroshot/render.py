"""The RGB rendering SAM and CLIP see: three catalog bands, each stretched between two percentiles to 0-255."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio

from geossl.errors import InputError
from geossl.io.valid import read_valid
from geossl.models.rgb import stretch_rgb


def band_indexes(bands: list[str], rgb: list[str], where: str | Path) -> list[int]:
    """1-based indexes of the ``rgb`` band names among the catalog's ``bands`` (names compared without case)."""
    lower = [b.lower() for b in bands]
    missing = [name for name in rgb if name.lower() not in lower]
    if missing:
        raise InputError(where, f"no band named {missing} (bands: {bands}); choose others with --rgb")
    return [lower.index(name.lower()) + 1 for name in rgb]


def read_rgb(path: Path, indexes: list[int], low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """The scene as ``(H, W, 3)`` uint8, and its valid-pixel mask (its mask, no band at nodata: geossl.io.valid).

    Each band maps its ``low`` percentile to 0 and its ``high`` percentile to 255 (over the valid pixels).
    """
    with rasterio.open(path) as src:
        data = src.read(indexes)
        valid = read_valid(src, data, src.nodata)
    values = np.where(valid, data, 0).astype(np.float64)
    return stretch_rgb(values, valid, low, high), valid
