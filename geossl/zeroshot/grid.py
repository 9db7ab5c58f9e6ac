"""The catalog's grid: every scene's pixels on one lattice (ingest aligned them), the union of their extents."""

from __future__ import annotations

import rasterio
from rasterio.crs import CRS

from geossl.catalog import Catalog, SceneEntry
from geossl.io.cog import Grid


def scene_grid(catalog: Catalog, scene: SceneEntry) -> Grid:
    """The grid of one ingested scene."""
    return Grid(CRS.from_wkt(catalog.crs), rasterio.Affine(*scene.transform), scene.width, scene.height)


def catalog_grid(catalog: Catalog) -> Grid:
    """The smallest grid on the catalog's lattice that holds every scene."""
    grids = [scene_grid(catalog, s) for s in catalog.scenes]
    first = grids[0].transform
    minx = min(g.bounds[0] for g in grids)
    maxy = max(g.bounds[3] for g in grids)
    width = round((max(g.bounds[2] for g in grids) - minx) / first.a)
    height = round((min(g.bounds[1] for g in grids) - maxy) / first.e)
    return Grid(grids[0].crs, rasterio.Affine(first.a, 0.0, minx, 0.0, first.e, maxy), width, height)


def offset_in(outer: Grid, inner: Grid) -> tuple[int, int]:
    """(row, col) of ``inner``'s first pixel in ``outer`` (both on one lattice)."""
    col, row = ~outer.transform @ (inner.transform.c, inner.transform.f)
    return round(row), round(col)
