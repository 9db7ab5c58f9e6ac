"""Sieve: regions smaller than a threshold are merged into a neighbour before polygonizing.

The sieve is GDAL's (``rasterio.features.sieve``, 4-connected, nodata excluded: a small region next to nodata
only is kept), run on each tile read with a halo of ``threshold`` pixels. What this gives, compared with one
sieve over the whole raster:

- The same regions are removed. A region of fewer than ``threshold`` pixels that reaches the tile spans less
  than ``threshold`` pixels in every direction, so it lies whole inside the halo and its size is exact. A region
  of ``threshold`` pixels or more that reaches the tile but leaves the halo crosses the whole halo, so at least
  ``threshold`` of its pixels are inside: it is never mistaken for a small one.
- Where a removed region goes can differ: GDAL gives it to its neighbour with the most pixels, and a large
  neighbour is only counted inside the halo. When two large neighbours are both cut by the halo the choice
  can differ from the whole-raster one, and a small region cut by a tile border may then end up split between
  two classes. ``bench/vectorize.py`` measures how many pixels differ on real data (see bench/RESULTS.md).

This keeps memory bounded by the tile (a whole-raster GDAL sieve needs the full raster as an array) and runs
in parallel with the polygonizing.
"""

from __future__ import annotations

import numpy as np
from rasterio.features import sieve

from geossl.vectorize.source import NATIVE_TYPES


def sieve_halo(threshold: int) -> int:
    """Halo, in pixels, that a tile needs so that its sieve sees every small region whole (see above)."""
    return threshold if threshold > 1 else 0


def sieve_array(values: np.ndarray, valid: np.ndarray, threshold: int) -> np.ndarray:
    """Merge 4-connected regions of fewer than ``threshold`` valid pixels into their largest neighbour.

    Invalid pixels take no part (they are neither sieved nor anyone's neighbour) and keep their value.
    """
    if threshold <= 1 or not valid.any():
        return values
    work = values if values.dtype.name in NATIVE_TYPES else values.astype(np.int32)
    out = sieve(work, size=threshold, mask=valid.astype(np.uint8), connectivity=4)
    return out.astype(values.dtype, copy=False)
