"""The target grid: one CRS, one pixel size and one pixel lattice that every output is aligned to.

Given a CRS and a resolution ``(rx, ry)`` and a lattice origin ``(x0, y0)``, a scene's output grid is its
footprint in the target CRS (bounds transformed with densified edges) snapped outwards to the lattice::

    minx' = x0 + floor((minx - x0) / rx) * rx      maxx' = x0 + ceil((maxx - x0) / rx) * rx
    maxy' = y0 - floor((y0 - maxy) / ry) * ry      miny' = y0 - ceil((y0 - miny) / ry) * ry

so two outputs on the same target grid always share pixel borders. A scene already on the lattice keeps
its exact grid and is copied without resampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import rasterio
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from geossl.io.cog import Grid
from geossl.manifest import GridConfig

_EPS = 1e-6


@dataclass(frozen=True)
class TargetGrid:
    """A CRS, a pixel size and a lattice origin."""

    crs: CRS
    res: tuple[float, float]
    origin: tuple[float, float]

    def snap(self, bounds: tuple[float, float, float, float]) -> Grid:
        """The smallest lattice-aligned grid covering ``bounds`` (in the target CRS)."""
        (rx, ry), (x0, y0) = self.res, self.origin
        minx, miny, maxx, maxy = bounds
        c0 = math.floor((minx - x0) / rx + _EPS)
        c1 = math.ceil((maxx - x0) / rx - _EPS)
        r0 = math.floor((y0 - maxy) / ry + _EPS)
        r1 = math.ceil((y0 - miny) / ry - _EPS)
        transform = rasterio.Affine(rx, 0.0, x0 + c0 * rx, 0.0, -ry, y0 - r0 * ry)
        return Grid(self.crs, transform, max(1, c1 - c0), max(1, r1 - r0))

    def grid_for(self, source: Grid) -> Grid:
        """The output grid of a source raster: the source itself when it is on the lattice."""
        if source.crs == self.crs and _close(source.resolution, self.res):
            t = source.transform
            off_c = (t.c - self.origin[0]) / self.res[0]
            off_r = (self.origin[1] - t.f) / self.res[1]
            if abs(off_c - round(off_c)) < _EPS and abs(off_r - round(off_r)) < _EPS:
                return source
        return self.snap(footprint_in(source, self.crs))


def _close(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return all(abs(x - y) <= _EPS * max(abs(x), abs(y)) for x, y in zip(a, b, strict=True))


def footprint_in(grid: Grid, crs: CRS) -> tuple[float, float, float, float]:
    """Bounds of ``grid`` in ``crs``, edges densified so curved reprojections are covered."""
    if grid.crs == crs:
        return grid.bounds
    bounds: tuple[float, float, float, float] = transform_bounds(grid.crs, crs, *grid.bounds, densify_pts=21)
    return bounds


def target_grid(config: GridConfig, first: Grid) -> TargetGrid:
    """The target grid from the manifest, defaulting to the first scene's CRS, pixel size and lattice."""
    crs = CRS.from_user_input(config.crs) if config.crs else first.crs
    if config.resolution is not None:
        res = (config.resolution, config.resolution)
    elif crs == first.crs:
        res = first.resolution
    else:
        # Same pixel count across the footprint as the first scene, in the new CRS's units.
        minx, miny, maxx, maxy = footprint_in(first, crs)
        res = ((maxx - minx) / first.width, (maxy - miny) / first.height)
        res = (max(res), max(res))
    if crs == first.crs and _close(first.resolution, res):
        origin = (first.transform.c, first.transform.f)
    else:
        origin = (0.0, 0.0)
    return TargetGrid(crs=crs, res=res, origin=origin)
