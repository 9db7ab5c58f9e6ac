"""The scenes to predict: opened and checked against the checkpoint before any work starts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import rasterio
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import CRSError

from geossl.errors import InputError
from geossl.ingest.inspect import inspect_raster
from geossl.io.cog import Grid
from geossl.io.names import scene_ids
from geossl.models import ModelBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scene:
    """A scene to predict: where it is, its grid, and how its invalid pixels are marked."""

    path: Path
    id: str
    grid: Grid
    count: int
    nodata: float | None
    dataset_mask: bool

    @property
    def height(self) -> int:
        """Rows."""
        return self.grid.height

    @property
    def width(self) -> int:
        """Columns."""
        return self.grid.width


def check_bands(path: Path, descriptions: tuple[str | None, ...], expected: list[str],
                ignore_names: bool = False) -> None:
    """Refuse a scene whose band count, or named band order, differs from the checkpoint's bands.

    A scene whose bands are not all named cannot be checked beyond their count (a warning says so);
    ``ignore_names`` trusts the order of named bands too.
    """
    if len(descriptions) != len(expected):
        raise InputError(path, f"has {len(descriptions)} bands but the checkpoint expects {len(expected)} "
                               f"({', '.join(expected)})")
    names = [d.strip() for d in descriptions if d and d.strip()]
    if len(names) < len(expected):
        log.warning("%s: bands are not named; assuming the checkpoint's order (%s)", path, ", ".join(expected))
        return
    if ignore_names or [n.casefold() for n in names] == [e.casefold() for e in expected]:
        return
    if sorted(n.casefold() for n in names) == sorted(e.casefold() for e in expected):
        raise InputError(path, f"band order {', '.join(names)} differs from the checkpoint's {', '.join(expected)}")
    raise InputError(path, f"bands {', '.join(names)} differ from the checkpoint's {', '.join(expected)} "
                           "(--ignore-band-names trusts the order)")


def _same_crs(crs: CRS, other: str) -> bool:
    try:
        return crs == CRS.from_user_input(other)
    except CRSError:
        return False


def open_scenes(paths: list[Path], bundle: ModelBundle, ignore_band_names: bool = False) -> list[Scene]:
    """Check every scene (readable, georeferenced, bands as the checkpoint's) and describe it."""
    scenes = []
    for path, sid in zip(paths, scene_ids(paths), strict=True):
        if not path.exists():
            raise InputError(path, "scene not found")
        info = inspect_raster(path, "scene")
        check_bands(path, info.descriptions, bundle.bands, ignore_band_names)
        with rasterio.open(path) as src:
            flags = src.mask_flag_enums[0]
        dataset_mask = MaskFlags.per_dataset in flags and MaskFlags.nodata not in flags
        nodata = info.nodata if info.nodata is not None else bundle.nodata
        if bundle.crs and not _same_crs(info.grid.crs, bundle.crs):
            log.warning("%s: CRS %s differs from the training data's", path, info.grid.crs.to_string())
        scenes.append(Scene(path=path.absolute(), id=sid, grid=info.grid, count=info.count, nodata=nodata,
                            dataset_mask=dataset_mask))
    return scenes
