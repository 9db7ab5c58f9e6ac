"""8-bit RGB renderings of band stacks: what the RGB foundation models (SAM, CLIP) see of a multispectral image.

Used by ``geossl zeroshot`` (whole scenes) and the ``sam`` segment source of the ``segments`` refinement
(training windows), so both show SAM the same picture.
"""

from __future__ import annotations

import numpy as np


def stretch_rgb(values: np.ndarray, valid: np.ndarray, low: float, high: float) -> np.ndarray:
    """Three bands ``(3, H, W)`` as ``(H, W, 3)`` uint8, each stretched linearly to 0–255.

    A band's ``low`` percentile over the ``valid`` pixels maps to 0 and its ``high`` percentile to 255; invalid
    pixels are 0.
    """
    rgb = np.zeros((*valid.shape, 3), dtype=np.uint8)
    if not valid.any():
        return rgb
    for i, band in enumerate(values):
        lo, hi = np.percentile(band[valid], [low, high])
        scaled = (band - lo) / max(hi - lo, 1e-12) * 255.0
        rgb[..., i] = np.where(valid, np.clip(np.nan_to_num(scaled), 0, 255), 0).round().astype(np.uint8)
    return rgb
