"""Which pixels of an image are valid: the one rule that ingest, training, prediction and suggestions apply.

A pixel is valid when

- the raster's own mask says so: GDAL's per-dataset mask (the internal mask ``geossl ingest`` writes where the
  imagery declares no nodata, a ``.msk`` file, an alpha band GDAL recognises), 0 = invalid;
- no band holds the nodata value (when there is one);
- no band is NaN (float data).

Every pixel value is kept as the source had it: a 255 of a saturated roof in 8-bit imagery without a nodata is
valid, and only the mask marks the empty area around a warped scene. :func:`valid_pixels` combines pixels
already read with a mask; :func:`read_mask` reads the mask of a window; :func:`read_valid` does both.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.enums import MaskFlags
from rasterio.windows import Window


def has_mask(src: Any) -> bool:
    """True when the open dataset ``src`` marks invalid pixels with a mask of its own (not its nodata value)."""
    flags = src.mask_flag_enums[0]
    return MaskFlags.per_dataset in flags and MaskFlags.nodata not in flags


def read_mask(src: Any, window: Window | None = None, out_shape: tuple[int, int] | None = None
              ) -> np.ndarray | None:
    """The dataset's own mask over ``window`` (``(h, w)`` uint8, 0 = invalid), or None when it has none.

    ``out_shape`` reads it decimated (nearest), as a read of the bands with the same ``out_shape``.
    """
    if not has_mask(src):
        return None
    mask: np.ndarray = src.dataset_mask(window=window, out_shape=out_shape)
    return mask


def valid_pixels(data: np.ndarray, nodata: float | None, mask: np.ndarray | None = None) -> np.ndarray:
    """``(h, w)`` bool of the pixels of ``data`` ``(bands, h, w)`` that are valid.

    ``mask`` (``(h, w)``, 0 or False = invalid) is the raster's own mask, as :func:`read_mask` gives it.
    """
    valid = np.ones(data.shape[1:], dtype=bool) if mask is None else np.asarray(mask, dtype=bool).copy()
    if nodata is not None and not np.isnan(nodata):
        valid &= ~(data == nodata).any(axis=0)
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data).all(axis=0)
    return valid


def read_valid(src: Any, data: np.ndarray, nodata: float | None, window: Window | None = None,
               out_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The valid pixels of ``data``, read from ``src`` over ``window`` (and ``out_shape``): mask, nodata, NaN."""
    return valid_pixels(data, nodata, read_mask(src, window, out_shape))
