"""The scenes to predict: opened and checked against the checkpoint before any work starts."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import rasterio

from geossl.errors import InputError
from geossl.ingest.inspect import inspect_raster
from geossl.io.cog import Grid
from geossl.io.names import scene_ids
from geossl.io.valid import has_mask
from geossl.models import ModelBundle
from geossl.predict.resample import Warp, grid_difference, model_grid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scene:
    """A scene to predict: where it is, the grid it is predicted on, and how its invalid pixels are marked.

    ``warp`` is set when the scene is read onto ``grid`` (the model's) from its own grid ``warp.source``.
    """

    path: Path
    id: str
    grid: Grid
    count: int
    nodata: float | None
    dataset_mask: bool
    warp: Warp | None = None

    @property
    def height(self) -> int:
        """Rows."""
        return self.grid.height

    @property
    def width(self) -> int:
        """Columns."""
        return self.grid.width


def check_bands(path: Path, descriptions: tuple[str | None, ...], expected: list[str],
                ignore_names: bool = False, also: Sequence[list[str]] = ()) -> None:
    """Refuse a scene whose band count, or named band order, differs from the checkpoint's bands.

    The scene's names may be ``expected`` or any naming in ``also`` (the training files' own band descriptions),
    compared case-insensitively. A scene whose bands are not all named cannot be checked beyond their count
    (a warning says so); ``ignore_names`` trusts the order of named bands too.
    """
    if len(descriptions) != len(expected):
        raise InputError(path, f"has {len(descriptions)} bands but the checkpoint expects {len(expected)} "
                               f"({', '.join(expected)})")
    names = [d.strip() for d in descriptions if d and d.strip()]
    if len(names) < len(expected):
        log.warning("%s: bands are not named; assuming the checkpoint's order (%s)", path, ", ".join(expected))
        return
    namings = [expected, *(n for n in also if n != expected)]
    folded = [n.casefold() for n in names]
    if ignore_names or any(folded == [e.casefold() for e in naming] for naming in namings):
        return
    for naming in namings:
        if sorted(folded) == sorted(e.casefold() for e in naming):
            raise InputError(path, f"band order {', '.join(names)} differs from the checkpoint's "
                                   f"{', '.join(naming)}")
    known = " or ".join(", ".join(naming) for naming in namings)
    raise InputError(path, f"bands {', '.join(names)} differ from the checkpoint's {known} "
                           "(--ignore-band-names trusts the order)")


def scene_warp(path: Path, grid: Grid, bundle: ModelBundle, resample: bool) -> tuple[Grid, Warp | None]:
    """The grid a scene is predicted on: its own, or with ``resample`` the model's when they differ.

    A scene predicted on a grid other than the model's is predicted at the wrong scale: a warning says so.
    """
    difference = grid_difference(grid, bundle)
    if difference is None:
        return grid, None
    if not resample:
        log.warning("%s: %s; predicting on the scene's own grid (--resample reads it on the model's)",
                    path, difference)
        return grid, None
    target = model_grid(path, grid, bundle)
    log.info("%s: %s; resampling it onto the model's grid (%d x %d pixels)", path, difference, target.width,
             target.height)
    return target, Warp(source=grid)


def scene_nodata(declared: float | None, dataset_mask: bool, bundle: ModelBundle) -> float | None:
    """The nodata value a scene is read with: its own; none when its mask marks its empty pixels; else the bundle's.

    A scene that marks nothing (a source file without nodata) is read as the training imagery was. A scene with a
    mask of its own keeps every value, under a bundle of older catalogs too, whose nodata may be the value that once
    had to mark the empty pixels of imagery without one (255 for 8-bit imagery).
    """
    if declared is not None:
        return declared
    return None if dataset_mask else bundle.nodata


def open_scenes(paths: list[Path], bundle: ModelBundle, ignore_band_names: bool = False,
                resample: bool = False) -> list[Scene]:
    """Check every scene (readable, georeferenced, bands as the checkpoint's) and describe it.

    With ``resample``, a scene whose CRS or pixel size differs from the model's is read onto the model's grid.
    """
    scenes = []
    for path, sid in zip(paths, scene_ids(paths), strict=True):
        if not path.exists():
            raise InputError(path, "scene not found")
        info = inspect_raster(path, "scene")
        check_bands(path, info.descriptions, bundle.bands, ignore_band_names, bundle.source_bands)
        with rasterio.open(path) as src:
            dataset_mask = has_mask(src)
        nodata = scene_nodata(info.nodata, dataset_mask, bundle)
        grid, warp = scene_warp(path, info.grid, bundle, resample)
        scenes.append(Scene(path=path.absolute(), id=sid, grid=grid, count=info.count, nodata=nodata,
                            dataset_mask=dataset_mask, warp=warp))
    return scenes
