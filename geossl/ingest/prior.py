"""The manifest's prior maps: check their class ids against the mapping, bring them onto a scene's grid.

A prior on another grid than the imagery's is warped like labels are (nearest neighbour: class ids are never
blended). Several prior rasters are mosaicked window by window, the first with a mapped class winning. The
prior's ids are replaced by the manifest's through ``prior.classes``; its nodata, and ids mapped to the
ignore id, become the ignore id.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from distributed import Client
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geossl.errors import InputError
from geossl.ingest.inspect import RasterInfo
from geossl.ingest.labels import MOSAIC_WINDOW, check_overlap, scan_class_raster
from geossl.io.cog import CogOptions, Grid, class_metadata, wrap_vrt, write_cog
from geossl.io.style import colormap
from geossl.manifest import Manifest


@dataclass
class PriorSources:
    """Checked prior rasters, the nodata of each, and the id lookup table (prior id → manifest id)."""

    rasters: list[RasterInfo]
    nodata: dict[Path, int | None]
    lookup: np.ndarray


def check_prior(client: Client, manifest: Manifest, paths: list[Path], imagery: list[RasterInfo],
                quiet: bool = False) -> PriorSources:
    """Check every prior raster: one band of integers, overlapping the imagery, every id mapped (a full scan)."""
    assert manifest.prior is not None
    mapping = manifest.prior.classes
    lookup = np.full(65536, manifest.ignore_id, dtype=np.uint16)
    lookup[list(mapping)] = list(mapping.values())
    sources = PriorSources(rasters=[], nodata={}, lookup=lookup)
    for path in paths:
        info, nodata, unmapped = scan_class_raster(client, path, "prior raster", manifest.prior.nodata,
                                                   set(mapping), quiet)
        if unmapped:
            raise InputError(path, f"prior class ids {unmapped} are not in prior.classes (mapped: "
                                   f"{sorted(mapping)}, nodata {nodata})")
        check_overlap(path, info.grid, imagery)
        sources.rasters.append(info)
        sources.nodata[path] = nodata
    return sources


def write_aligned_prior(sources: PriorSources, manifest: Manifest, grid: Grid, dst: Path, scratch: Path,
                        options: CogOptions) -> None:
    """Write the prior on ``grid``, in the manifest's class ids, as a paletted COG (nodata = the ignore id)."""
    ignore = manifest.ignore_id
    mosaic = scratch / f"{dst.stem}.prior-mosaic.tif"
    _mosaic(sources, grid, ignore, mosaic)
    vrt = wrap_vrt(mosaic, descriptions=["prior class"], nodata=ignore,
                   colormap=colormap(manifest.classes, nodata=ignore),
                   band_metadata=class_metadata([c.model_dump() for c in manifest.classes]))
    write_cog(vrt, dst, CogOptions(compress=options.compress, level=options.level, blocksize=options.blocksize,
                                   overview_resampling="MODE", warp_resampling="nearest", predictor=False,
                                   threads=options.threads))
    mosaic.unlink()


def _warped(src: rasterio.io.DatasetReader, grid: Grid, nodata: int | None) -> WarpedVRT:
    """The raster on ``grid`` (nearest); its nodata, or an alpha band when it has none, marks empty pixels."""
    empty = {"src_nodata": nodata, "nodata": nodata} if nodata is not None else {"add_alpha": True}
    return WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                     resampling=Resampling.nearest, **empty)


def _mosaic(sources: PriorSources, grid: Grid, ignore: int, dst: Path) -> None:
    """Window by window: each raster warped (nearest), its ids mapped; the first mapped class wins."""
    dtype = "uint8" if max(int(sources.lookup.max()), ignore) < 256 else "uint16"
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": dtype,
               "crs": grid.crs, "transform": grid.transform, "tiled": True, "blockxsize": 256,
               "blockysize": 256, "nodata": ignore, "compress": "zstd", "BIGTIFF": "IF_SAFER"}
    opened = [rasterio.open(info.path) for info in sources.rasters]
    try:
        warped = [_warped(src, grid, sources.nodata[info.path]) for src, info in
                  zip(opened, sources.rasters, strict=True)]
        with rasterio.open(dst, "w", **profile) as out:
            for r0 in range(0, grid.height, MOSAIC_WINDOW):
                for c0 in range(0, grid.width, MOSAIC_WINDOW):
                    win = Window(c0, r0, min(MOSAIC_WINDOW, grid.width - c0), min(MOSAIC_WINDOW, grid.height - r0))
                    block = np.full((win.height, win.width), ignore, dtype=dtype)
                    for vrt in warped:
                        data = vrt.read(1, window=win, masked=True)  # masked: nodata and outside the raster
                        mapped = sources.lookup[np.asarray(data.filled(0), dtype=np.int64)].astype(dtype)
                        keep = ~np.ma.getmaskarray(data) & (mapped != ignore)
                        fill = (block == ignore) & keep
                        block[fill] = mapped[fill]
                    out.write(block[None], window=win)
        for vrt in warped:
            vrt.close()
    finally:
        for src in opened:
            src.close()
