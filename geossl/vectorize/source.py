"""The inputs of ``geossl vectorize``: a class raster, its classes, an optional confidence raster.

Everything here is checked before any output is started, so a bad input stops with one line and nothing written.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError

from geossl.errors import InputError
from geossl.io.cog import Grid
from geossl.manifest import ClassDef, load_manifest

#: Integer types GDAL's sieve and our labelling take as they are; others are read as int32.
NATIVE_TYPES = ("uint8", "uint16", "int16", "int32")
#: Colours for classes that come without one (QGIS's default categorized palette, in order).
FALLBACK_COLORS = ("#e31a1c", "#1f78b4", "#33a02c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3", "#b2df8a",
                   "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99")


@dataclass(frozen=True)
class ClassRaster:
    """A validated class raster: single integer band, georeferenced, with its classes."""

    path: Path
    grid: Grid
    dtype: str
    nodata: float | None
    block: tuple[int, int]
    classes: tuple[ClassDef, ...]
    colormap: dict[int, tuple[int, int, int, int]]

    @property
    def pixel_area(self) -> float:
        """Area of one pixel in map units²."""
        t = self.grid.transform
        return float(abs(t.a * t.e - t.b * t.d))


def open_class_raster(path: Path, manifest: Path | None = None) -> ClassRaster:
    """Open and check ``path``; classes come from ``manifest`` if given, else from the band tag ``classes``."""
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        with rasterio.open(path) as src:
            grid = Grid.of(src)
            count, dtype, nodata = src.count, src.dtypes[0], src.nodata
            block = src.block_shapes[0]
            tags = src.tags(1)
            colormap = _colormap(src)
    except RasterioIOError as exc:
        raise InputError(path, "not a raster GDAL can read") from exc
    if count != 1:
        raise InputError(path, f"has {count} bands; a class raster has one band of class ids")
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise InputError(path, f"is a {dtype} raster; vectorize needs integer class ids (a class map, not "
                               "a continuous raster)")
    if grid.crs is None:
        raise InputError(path, "has no CRS; assign one (e.g. gdal_edit.py -a_srs) before vectorizing")
    classes = _manifest_classes(manifest) if manifest is not None else _tag_classes(path, tags, colormap)
    return ClassRaster(path=path, grid=grid, dtype=dtype, nodata=nodata, block=block, classes=tuple(classes),
                       colormap=colormap)


def check_confidence(path: Path, grid: Grid) -> float | None:
    """Check that ``path`` is a one-band raster on ``grid``; return its nodata value."""
    if not path.exists():
        raise InputError(path, "no such file")
    try:
        with rasterio.open(path) as src:
            other, count, nodata = Grid.of(src), src.count, src.nodata
    except RasterioIOError as exc:
        raise InputError(path, "not a raster GDAL can read") from exc
    if count != 1:
        raise InputError(path, f"has {count} bands; the confidence raster needs one")
    if not grid.same_as(other):
        raise InputError(path, "is not on the class raster's grid (same CRS, transform and size needed)")
    return None if nodata is None else float(nodata)


def _colormap(src: rasterio.io.DatasetReader) -> dict[int, tuple[int, int, int, int]]:
    try:
        return dict(src.colormap(1))
    except ValueError:  # no colour table
        return {}


def _manifest_classes(manifest: Path) -> list[ClassDef]:
    return list(load_manifest(manifest).classes)


def _tag_classes(path: Path, tags: dict[str, str], colormap: dict[int, tuple[int, int, int, int]]
                 ) -> list[ClassDef]:
    """Classes from the band tag ``classes`` (JSON list of {id, name, color}); none when it is absent."""
    text = tags.get("classes")
    if text is None:
        return []
    try:
        items = json.loads(text)
        return [ClassDef.model_validate(item) for item in items]
    except (json.JSONDecodeError, TypeError, ValidationError) as exc:
        raise InputError(path, "band metadata 'classes' is not a JSON list of {id, name, color}") from exc


def complete_classes(known: tuple[ClassDef, ...], present: set[int],
                     colormap: dict[int, tuple[int, int, int, int]] | None = None) -> list[ClassDef]:
    """``known`` classes plus a generic entry (``class N``, a palette colour) for each id only seen in the data."""
    out = list(known)
    ids = {c.id for c in known}
    names = {c.name for c in known}
    for i, value in enumerate(sorted(present - ids)):
        rgb = (colormap or {}).get(value)
        color = "#{:02x}{:02x}{:02x}".format(*rgb[:3]) if rgb else FALLBACK_COLORS[i % len(FALLBACK_COLORS)]
        name = f"class {value}"
        while name in names:
            name += "'"
        out.append(ClassDef(id=value, name=name, color=color))
    return sorted(out, key=lambda c: c.id)


_UNIT_ABBREVIATIONS = {"metre": "m", "meter": "m", "m": "m", "foot": "ft", "ft": "ft", "us survey foot": "ftus",
                       "foot_us": "ftus", "kilometre": "km", "kilometer": "km"}


def area_field(crs: CRS) -> str:
    """Name of the area attribute: ``area_m2`` for metres, ``area_deg2`` for geographic CRSs, and so on."""
    if crs.is_geographic:
        return "area_deg2"
    unit = (crs.linear_units or "").strip().lower()
    short = _UNIT_ABBREVIATIONS.get(unit) or re.sub(r"[^a-z0-9]+", "_", unit).strip("_") or "units"
    return f"area_{short}2"


def min_area_pixels(min_area: float, pixel_area: float) -> int:
    """Smallest region size, in pixels, that has at least ``min_area`` map units²: the sieve threshold.

    A region of ``k`` pixels is removed when ``k * pixel_area < min_area``; ``k`` pixels are kept from
    ``ceil(min_area / pixel_area)`` on (a relative 1e-9 absorbs the rounding of exact multiples).
    """
    if min_area <= 0:
        return 0
    ratio = min_area / pixel_area
    return max(1, math.ceil(ratio - 1e-9 * max(1.0, ratio)))
