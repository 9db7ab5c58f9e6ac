"""The model's grid: how a scene's grid differs from it, and the grid a scene is read on with ``--resample``.

A model sees pixels at the size it was trained on. A scene in another CRS or at another pixel size is either
predicted on its own grid (at the wrong scale: a warning says so) or, with ``--resample``, read through a GDAL
warped VRT onto the model's CRS and pixel size; the outputs are then on that grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds

from geossl.errors import InputError
from geossl.io.cog import Grid
from geossl.models import ModelBundle

#: GDAL resampling of ``--resample``: the area-weighted mean of the source pixels a model pixel covers
#: (GDAL >= 3.1), right for coarser and finer scenes alike; nodata source pixels do not count.
RESAMPLING = "average"
#: Pixel sizes closer than this (relative) are the same.
SIZE_TOLERANCE = 1e-3
#: Grid edges within this fraction of a pixel of a multiple of the pixel size are on it (float noise).
SNAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Warp:
    """A scene read onto another grid: the scene file's own grid and the GDAL resampling used."""

    source: Grid
    method: str = RESAMPLING


def crs_name(crs: CRS) -> str:
    """A short name of a CRS for messages: ``EPSG:n`` when it has one, else its PROJ string."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_proj4() or "a custom CRS"


def model_crs(bundle: ModelBundle) -> CRS | None:
    """The CRS of the model's training data (None when the checkpoint does not record a valid one)."""
    if not bundle.crs:
        return None
    try:
        return CRS.from_user_input(bundle.crs)
    except CRSError:
        return None


def grid_difference(grid: Grid, bundle: ModelBundle) -> str | None:
    """How ``grid`` differs from the model's CRS or pixel size, in words; None when it does not."""
    crs = model_crs(bundle)
    if crs is not None and grid.crs != crs:
        return f"CRS {crs_name(grid.crs)} differs from the model's {crs_name(crs)}"
    if bundle.resolution and not all(math.isclose(a, b, rel_tol=SIZE_TOLERANCE)
                                     for a, b in zip(grid.resolution, bundle.resolution, strict=True)):
        return (f"pixel size {_size(grid.resolution)} differs from the model's {_size(bundle.resolution)} "
                "(the model would see every feature at another scale)")
    return None


def model_grid(path: Path, grid: Grid, bundle: ModelBundle) -> Grid:
    """The grid covering scene ``grid`` in the model's CRS at its pixel size, on the training data's pixel lattice.

    The lattice is the checkpoint's ``grid_origin`` shifted by whole pixels (multiples of the pixel size when it
    records no origin or no CRS). Raises :class:`InputError` when the checkpoint does not record its pixel size.
    """
    if len(bundle.resolution) != 2:
        raise InputError(path, "cannot resample: the checkpoint does not record the pixel size it was trained at")
    crs = model_crs(bundle) or grid.crs
    rx, ry = bundle.resolution
    ox, oy = bundle.grid_origin if len(bundle.grid_origin) == 2 and model_crs(bundle) else (0.0, 0.0)
    left, bottom, right, top = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    x0 = ox + math.floor((left - ox) / rx + SNAP_TOLERANCE) * rx
    y0 = oy + math.ceil((top - oy) / ry - SNAP_TOLERANCE) * ry
    width = max(1, math.ceil((right - x0) / rx - SNAP_TOLERANCE))
    height = max(1, math.ceil((y0 - bottom) / ry - SNAP_TOLERANCE))
    return Grid(crs, from_origin(x0, y0, rx, ry), width, height)


def _size(resolution: tuple[float, float] | list[float]) -> str:
    return " x ".join(f"{v:.6g}" for v in resolution)
