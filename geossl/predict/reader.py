"""Reading a block of a scene one row band at a time: raw pixels → normalized float32 and a valid mask.

A scene read onto the model's grid (``--resample``) is a GDAL warped VRT of the file with an alpha band added:
windowed reads warp only the source pixels the window needs, so memory stays bounded as for the file itself,
and the alpha band is 0 where no valid source pixel falls (outside the scene, its nodata, its mask).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geossl.errors import InputError
from geossl.ingest.inspect import RASTER_ERRORS
from geossl.io.valid import read_mask
from geossl.models import ModelBundle
from geossl.predict.scene import Scene


@dataclass(frozen=True)
class RowBand:
    """Scene rows ``[row0, row0 + h)`` × columns ``[col0, col0 + w)``, normalized (0 where invalid)."""

    row0: int
    col0: int
    data: np.ndarray
    valid: np.ndarray

    def tile(self, row0: int, col0: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        """The window at scene ``(row0, col0)``: data ``(bands, size, size)`` and valid mask of its in-scene part.

        A window reaching past the scene's edge (a scene smaller than one window) is padded by reflection.
        """
        r, c = row0 - self.row0, col0 - self.col0
        data = self.data[:, r : r + size, c : c + size]
        valid = self.valid[r : r + size, c : c + size]
        h, w = valid.shape
        if h < size or w < size:
            data = np.pad(data, ((0, 0), (0, size - h), (0, size - w)), mode="reflect")
        return data, valid


@contextmanager
def open_scene(scene: Scene) -> Iterator[DatasetReader | WarpedVRT]:
    """The scene as prediction reads it: the file itself, or a warped VRT of it on ``scene.grid``."""
    with rasterio.open(scene.path) as src:
        if scene.warp is None:
            yield src
            return
        grid = scene.grid
        with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                       src_nodata=scene.nodata, resampling=Resampling[scene.warp.method], add_alpha=True) as vrt:
            yield vrt


class RowBandReader:
    """Reads row bands ``size`` rows tall over columns ``[col0, col1)`` of an open scene."""

    def __init__(self, src: DatasetReader | WarpedVRT, scene: Scene, bundle: ModelBundle, col0: int, col1: int,
                 size: int) -> None:
        """``src``: the scene opened with :func:`open_scene`."""
        self.src, self.scene, self.col0, self.col1, self.size = src, scene, col0, col1, size
        self.bands = list(range(1, scene.count + 1))
        # Normalise with the checkpoint's statistics, but mark nodata as the scene declares it.
        self.bundle = bundle.model_copy(update={"nodata": scene.nodata})

    def read(self, row0: int) -> RowBand:
        """Read, normalize and mask rows ``[row0, row0 + size)`` (fewer at the scene's bottom)."""
        height = min(self.size, self.scene.height - row0)
        window = Window(self.col0, row0, self.col1 - self.col0, height)
        try:
            raw = self.src.read(self.bands, window=window)
            mask = scene_mask(self.src, self.scene, window)
        except RASTER_ERRORS as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        else:
            data, valid = self.bundle.normalize(raw, mask)
            return RowBand(row0=row0, col0=self.col0, data=data, valid=valid)
        # Raised outside the except block: GDAL's exception must not travel back from a Dask worker as our cause.
        raise InputError(self.scene.path, f"cannot read scene: {reason}")


def scene_mask(src: DatasetReader | WarpedVRT, scene: Scene, window: Window) -> np.ndarray | None:
    """The window's mask beyond the nodata value (0 = invalid): a warped scene's alpha, the file's own mask.

    ``src``: the scene opened with :func:`open_scene`. The alpha band is read by its index: GDAL takes an alpha
    band for the mask only in 2- and 4-band rasters.
    """
    if scene.warp is not None:
        alpha: np.ndarray = src.read(scene.count + 1, window=window)
        return alpha
    return read_mask(src, window) if scene.dataset_mask else None
