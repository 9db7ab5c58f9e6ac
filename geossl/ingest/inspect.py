"""Open and check input rasters before any work: readable, georeferenced, whole, consistent."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio._err import CPLE_BaseError
from rasterio.errors import RasterioError

from geossl.errors import InputError
from geossl.io.cog import Grid

#: What GDAL raises on an unreadable or corrupt file.
RASTER_ERRORS = (RasterioError, CPLE_BaseError)


@dataclass(frozen=True)
class RasterInfo:
    """What ingest needs to know of one input raster."""

    path: Path
    grid: Grid
    count: int
    dtype: str
    nodata: float | None
    descriptions: tuple[str | None, ...]


def _check_complete(src: rasterio.io.DatasetReader, path: Path) -> None:
    """Refuse a GeoTIFF whose tiles or strips point past the end of the file (a truncated copy)."""
    if src.driver != "GTiff":
        return
    size = os.path.getsize(path)
    rows = (src.height + src.block_shapes[0][0] - 1) // src.block_shapes[0][0]
    cols = (src.width + src.block_shapes[0][1] - 1) // src.block_shapes[0][1]
    bands = src.indexes if src.interleaving and src.interleaving.name == "BAND" else [1]
    for band in bands:
        for r, c in {(0, 0), (rows - 1, cols - 1), (rows - 1, 0), (rows // 2, cols // 2)}:
            offset = src.get_tag_item(f"BLOCK_OFFSET_{c}_{r}", "TIFF", bidx=band)
            nbytes = src.get_tag_item(f"BLOCK_SIZE_{c}_{r}", "TIFF", bidx=band)
            if offset and nbytes and int(offset) + int(nbytes) > size:
                raise InputError(path, "truncated GeoTIFF: image data runs past the end of the file")


def inspect_raster(path: Path, what: str = "raster") -> RasterInfo:
    """Open ``path`` and return its :class:`RasterInfo`, or raise a one-line :class:`InputError`."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise InputError(path, f"{what} has no CRS (georeference it first, e.g. gdal_edit.py -a_srs)")
            if src.transform.b != 0 or src.transform.d != 0:
                raise InputError(path, f"{what} is rotated; only north-up rasters are supported")
            _check_complete(src, path)
            # Reading the first and last block catches most corrupt files before any work starts.
            for win in (rasterio.windows.Window(0, 0, 1, 1),
                        rasterio.windows.Window(src.width - 1, src.height - 1, 1, 1)):
                src.read(1, window=win)
            return RasterInfo(path=path, grid=Grid.of(src), count=src.count, dtype=src.dtypes[0],
                              nodata=src.nodata, descriptions=tuple(src.descriptions))
    except InputError:
        raise
    except RASTER_ERRORS as exc:
        reason = str(exc).split("\n")[0]
        if "not recognized as" in reason or "not a supported file format" in reason:
            raise InputError(path, f"not a raster GDAL can read ({what} expected)") from exc
        raise InputError(path, f"cannot read {what}: {reason}") from exc


def check_imagery(infos: list[RasterInfo], band_names: list[str] | None) -> list[str]:
    """Check that all scenes share band count and type; return the band names to use."""
    first = infos[0]
    for info in infos[1:]:
        if info.count != first.count:
            raise InputError(info.path, f"has {info.count} bands but {first.path.name} has {first.count}; "
                                        "all scenes must have the same bands")
        if info.dtype != first.dtype:
            raise InputError(info.path, f"has data type {info.dtype} but {first.path.name} has {first.dtype}")
    if band_names is not None:
        if len(band_names) != first.count:
            raise InputError(first.path, f"has {first.count} bands but the manifest names {len(band_names)}")
        return list(band_names)
    described = [d for d in first.descriptions if d]
    if len(described) == first.count and len(set(described)) == first.count:
        return described
    return [f"band{i}" for i in range(1, first.count + 1)]


def check_label_raster(info: RasterInfo) -> None:
    """A label raster is one band of integers."""
    if info.count != 1:
        raise InputError(info.path, f"label raster has {info.count} bands; expected 1 band of class ids")
    if not np.issubdtype(np.dtype(info.dtype), np.integer) or np.dtype(info.dtype).itemsize > 2:
        raise InputError(info.path, f"label raster has data type {info.dtype}; expected 8- or 16-bit integers")
