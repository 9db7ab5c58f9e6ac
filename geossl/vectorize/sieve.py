"""Sieve: regions smaller than a threshold are merged into a neighbour before polygonizing.

The sieve is GDAL's (``rasterio.features.sieve``, 4-connected, nodata excluded: a small region next to nodata
only is kept), run on each tile read with a halo of ``threshold`` pixels; each tile keeps its own pixels and
the tiles are written to one temporary raster, which is then polygonized. So the sieved map is one
well-defined raster and the polygons are exactly its polygons, edge-matched across tiles. What this gives,
compared with one sieve over the whole raster:

- Regions of ``threshold`` pixels or more are never changed, and every smaller region that reaches the tile is
  recognised as small. A region of fewer than ``threshold`` pixels spans less than ``threshold`` pixels in
  every direction, so it lies whole inside the halo and its size is exact. A larger region that reaches the tile
  but leaves the halo crosses the whole halo, so at least ``threshold`` of its pixels are inside.
- Where a small region goes can differ. GDAL gives it to its neighbour with the most pixels, and if that one is
  small too, on to that one's largest neighbour, until a large region. Here a large neighbour is only counted
  inside the halo, ties between equal neighbours are broken in scan order (which starts elsewhere in each
  tile), and a chain of small regions can leave the halo. So a few small regions go to another neighbour,
  and rarely one stays, or is split between two classes at a tile border. On the Zion map tiled 4 x 4
  (25.8 Mpx, threshold 4 px) 4 pixels were kept or removed differently and 853 (0.003 %) got another class
  (``bench/vectorize.py``, bench/RESULTS.md).

This keeps memory bounded by the tile (rasterio's whole-raster sieve needs the full raster as an array) and
runs on every core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from distributed import Client
from rasterio.features import sieve
from rasterio.windows import Window

from geossl.parallel import ordered_results
from geossl.vectorize.source import NATIVE_TYPES, ClassRaster
from geossl.windows import Tiling


@dataclass(frozen=True)
class SieveTask:
    """Sieve one tile: read ``read`` (the tile and its halo), keep ``window``."""

    path: str
    window: Window
    read: Window
    threshold: int


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
    sieved: np.ndarray = out.astype(values.dtype, copy=False)
    return sieved


def sieve_tile(task: SieveTask) -> tuple[np.ndarray, np.ndarray]:
    """The sieved values and the validity of the tile's own pixels (runs on a Dask worker)."""
    with rasterio.open(task.path) as src:
        values = src.read(1, window=task.read)
        valid = src.read_masks(1, window=task.read) > 0
    values = sieve_array(values, valid, task.threshold)
    r0, c0 = task.window.row_off - task.read.row_off, task.window.col_off - task.read.col_off
    core = (slice(r0, r0 + task.window.height), slice(c0, c0 + task.window.width))
    return values[core], valid[core]


def sieve_raster(client: Client, raster: ClassRaster, tiling: Tiling, threshold: int, dst: Path,
                 quiet: bool = False) -> None:
    """Sieve ``raster`` tile by tile on ``client`` into the temporary GeoTIFF ``dst`` (same grid and nodata)."""
    tasks = [SieveTask(str(raster.path), tiling.tile(i, j), tiling.with_halo(tiling.tile(i, j), sieve_halo(threshold)),
                       threshold) for i, j in tiling]
    block = 256 if min(tiling.tile_height, tiling.tile_width) >= 256 else 16
    profile = {"driver": "GTiff", "width": raster.grid.width, "height": raster.grid.height, "count": 1,
               "dtype": raster.dtype, "crs": raster.grid.crs, "transform": raster.grid.transform,
               "nodata": raster.nodata, "tiled": True, "blockxsize": block, "blockysize": block,
               "compress": "ZSTD", "zstd_level": 1, "sparse_ok": True}
    workers = max(1, sum(client.nthreads().values()))
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(dst, "w", **profile) as out:
        for task, (values, valid) in zip(tasks, ordered_results(client, sieve_tile, tasks, max_in_flight=2 * workers,
                                                                 desc="sieve", quiet=quiet), strict=True):
            out.write(values, 1, window=task.window)
            if raster.nodata is None:
                out.write_mask(np.where(valid, 255, 0).astype(np.uint8), window=task.window)
