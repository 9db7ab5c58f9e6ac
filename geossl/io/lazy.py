"""Lazy, lock-free reads of rasters as Dask arrays chunked on the file's internal blocks.

Each chunk is read by its own task, which opens its own dataset handle: no lock is shared between tasks, so
reads and decompression run in parallel on every core (rioxarray's default lock serializes them onto one).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
from dask.base import tokenize
from rasterio.windows import Window

from geossl.io.valid import has_mask, read_mask

#: Chunks are whole multiples of the file's blocks, grown until a chunk holds about this many pixels.
TARGET_CHUNK_PIXELS = 1024 * 1024


def block_aligned_chunks(height: int, width: int, block: tuple[int, int], target: int = TARGET_CHUNK_PIXELS
                         ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row and column chunk sizes that are multiples of ``block`` (rows, cols) with about ``target`` pixels.

    The last chunk of each axis takes the remainder, so chunk borders always fall on block borders.
    """
    bh, bw = max(1, block[0]), max(1, block[1])
    # Grow square-ish in blocks: k blocks a side with (k*bh)*(k*bw) ~ target.
    k = max(1, int((target / (bh * bw)) ** 0.5))
    ch, cw = min(height, bh * k), min(width, bw * k)

    def split(total: int, size: int) -> tuple[int, ...]:
        n_full, rest = divmod(total, size)
        return (size,) * n_full + ((rest,) if rest else ())

    return split(height, ch), split(width, cw)


def _read_chunk(path: str, bands: list[int], block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """Read one chunk; ``block_info`` (from :func:`dask.array.map_blocks`) gives its location."""
    assert block_info is not None
    (_, _), (r0, r1), (c0, c1) = block_info[None]["array-location"]
    with rasterio.open(path) as src:
        chunk: np.ndarray = src.read(bands, window=Window(c0, r0, c1 - c0, r1 - r0))
    return chunk


def read_lazy(path: str | Path, bands: list[int] | None = None, target: int = TARGET_CHUNK_PIXELS) -> da.Array:
    """Open ``path`` as a ``(bands, rows, cols)`` Dask array; nothing is read until it is computed.

    Args:
        path: a raster file GDAL can open.
        bands: 1-based band indexes to read (default all).
        target: about how many pixels a chunk should hold (chunks stay aligned on the file's blocks).
    """
    path = str(path)
    with rasterio.open(path) as src:
        bands = list(bands or src.indexes)
        dtype = np.dtype(src.dtypes[bands[0] - 1])
        rows, cols = block_aligned_chunks(src.height, src.width, src.block_shapes[0], target)
    array: da.Array = da.map_blocks(
        _read_chunk,
        path,
        bands,
        dtype=dtype,
        chunks=((len(bands),), rows, cols),
        meta=np.empty((0, 0, 0), dtype=dtype),
        name=f"read-{Path(path).name}-{tokenize(path, bands, rows, cols, os.stat(path).st_mtime_ns)}",
    )
    return array


def _read_mask_chunk(path: str, block_info: dict[Any, Any] | None = None) -> np.ndarray:
    """Read one chunk of the file's own mask (``read_mask``) as bool."""
    assert block_info is not None
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    with rasterio.open(path) as src:
        mask = read_mask(src, window=Window(c0, r0, c1 - c0, r1 - r0))
    assert mask is not None
    return mask > 0


def read_lazy_mask(path: str | Path, target: int = TARGET_CHUNK_PIXELS) -> da.Array | None:
    """The file's own mask as a lazy ``(rows, cols)`` bool array (True = valid), or None when it has none.

    Chunked as :func:`read_lazy` chunks the bands; read by :func:`geossl.io.valid.read_mask`.
    """
    path = str(path)
    with rasterio.open(path) as src:
        if not has_mask(src):
            return None
        rows, cols = block_aligned_chunks(src.height, src.width, src.block_shapes[0], target)
    array: da.Array = da.map_blocks(
        _read_mask_chunk, path, dtype=bool, chunks=(rows, cols), meta=np.empty((0, 0), dtype=bool),
        name=f"mask-{Path(path).name}-{tokenize(path, rows, cols, os.stat(path).st_mtime_ns)}",
    )
    return array
