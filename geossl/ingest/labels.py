"""Label sources: check them against the class list and the imagery, and align them onto a scene's grid.

A single label raster is aligned by GDAL's COG driver in one streamed warp (nearest neighbour). Several
label rasters, or vector polygons, are mosaicked window by window (first source with a label wins: drawn
polygons, then rasters, then vectors) into a temporary tiled GeoTIFF, then copied to a COG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from distributed import Client
from pyogrio.errors import DataSourceError
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from shapely import STRtree, box

from geossl.errors import InputError
from geossl.ingest.classes import class_ids
from geossl.ingest.drawn import read_drawn
from geossl.ingest.grid import footprint_in
from geossl.ingest.inspect import RasterInfo, check_label_raster, inspect_raster
from geossl.ingest.stats import value_counts
from geossl.io.cog import CogOptions, Grid, class_metadata, wrap_vrt, write_cog
from geossl.io.layers import LayerSource
from geossl.io.lazy import read_lazy
from geossl.io.style import colormap
from geossl.manifest import LabelsConfig, Manifest

MOSAIC_WINDOW = 1024


@dataclass
class LabelSources:
    """Checked label inputs (``drawn``: the manifest's ``labels.drawn``, which come first, read from ``drawn_from``)."""

    rasters: list[RasterInfo]
    vectors: list[gpd.GeoDataFrame]
    vector_paths: list[Path]
    nodata: dict[Path, int | None]
    drawn: list[gpd.GeoDataFrame] = field(default_factory=list)
    drawn_from: list[LayerSource] = field(default_factory=list)


def _allowed(manifest: Manifest) -> set[int]:
    return {*manifest.class_ids, manifest.ignore_id}


def load_vector_labels(path: Path, config: LabelsConfig, manifest: Manifest) -> gpd.GeoDataFrame:
    """Read vector labels, map the class attribute to class ids, drop empty geometries.

    The attribute may hold ids, numeric text or class names (see :mod:`geossl.ingest.classes`).
    """
    try:
        frame = gpd.read_file(path)
    except (DataSourceError, ValueError, OSError) as exc:
        raise InputError(path, f"cannot read vector labels: {str(exc).splitlines()[0]}") from exc
    if frame.crs is None:
        raise InputError(path, "vector labels have no CRS")
    if config.class_field not in frame.columns:
        raise InputError(path, f"vector labels have no attribute '{config.class_field}' "
                               f"(attributes: {', '.join(c for c in frame.columns if c != 'geometry')})")
    frame = frame.assign(**{config.class_field: class_ids(frame[config.class_field], manifest, path,
                                                          config.class_field)})
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
    return frame[[config.class_field, "geometry"]].rename(columns={config.class_field: "class_id"})


def check_labels(client: Client, manifest: Manifest, rasters: list[Path], vectors: list[Path],
                 imagery: list[RasterInfo], quiet: bool = False, drawn: Sequence[LayerSource] = ()) -> LabelSources:
    """Check every label source: type, class ids (a full lazy scan of each raster) and overlap with imagery."""
    assert manifest.labels is not None
    sources = LabelSources(rasters=[], vectors=[], vector_paths=list(vectors), nodata={})
    allowed = _allowed(manifest)
    for path in rasters:
        info, nodata, bad = scan_class_raster(client, path, "label raster", manifest.labels.nodata, allowed, quiet)
        if bad:
            raise InputError(path, f"label ids {bad} are not in the class list {manifest.class_ids} "
                                   f"(ignore id {manifest.ignore_id}, nodata {nodata})")
        check_overlap(path, info.grid, imagery)
        sources.rasters.append(info)
        sources.nodata[path] = nodata
    sources.vectors = [_overlapping(load_vector_labels(path, manifest.labels, manifest), path, imagery)
                       for path in vectors]
    sources.drawn = [_overlapping(read_drawn(source, manifest), source, imagery) for source in drawn]
    sources.drawn_from = list(drawn)
    return sources


def _overlapping(frame: gpd.GeoDataFrame, path: Path | LayerSource, imagery: list[RasterInfo]) -> gpd.GeoDataFrame:
    """Vector labels read from ``path``, refused when none overlaps the imagery."""
    if len(frame):
        crs = imagery[0].grid.crs
        bounds = tuple(frame.to_crs(crs).total_bounds)
        if not any(box(*bounds).intersects(box(*footprint_in(i.grid, crs))) for i in imagery):
            raise InputError(str(path), "labels do not overlap any imagery scene")
    return frame


def scan_class_raster(client: Client, path: Path, kind: str, nodata: float | None, known: set[int],
                      quiet: bool = False) -> tuple[RasterInfo, int | None, list[int]]:
    """A raster of class ids (one band of integers) checked by a full lazy scan.

    Returns its description, its nodata (``nodata`` when given, else the file's) and the ids it holds that are
    neither in ``known`` nor its nodata.
    """
    info = inspect_raster(path, kind)
    check_label_raster(info)
    value = nodata if nodata is not None else info.nodata
    nodata_id = None if value is None else int(value)
    counts = value_counts(client, read_lazy(path), desc=f"checking {path.name}", quiet=quiet)
    return info, nodata_id, sorted(set(counts) - known - ({nodata_id} if nodata_id is not None else set()))


def check_overlap(path: Path, grid: Grid, imagery: list[RasterInfo]) -> None:
    """``path`` (on ``grid``) must overlap at least one imagery scene."""
    footprint = box(*grid.bounds)
    for info in imagery:
        if footprint.intersection(box(*footprint_in(info.grid, grid.crs))).area > 0:
            return
    raise InputError(path, "labels do not overlap any imagery scene")


def write_aligned_labels(sources: LabelSources, manifest: Manifest, grid: Grid, dst: Path,
                         scratch: Path, options: CogOptions, drawn: bool = True) -> None:
    """Write the labels on ``grid`` as a paletted COG at ``dst`` (nodata = the manifest's ignore id).

    ``drawn=False`` leaves the drawn polygons out (the labels the splits are decided on).
    """
    label_opts = CogOptions(compress=options.compress, level=options.level, blocksize=options.blocksize,
                            overview_resampling="MODE", warp_resampling="nearest", predictor=False,
                            threads=options.threads)
    cmap = colormap(manifest.classes, nodata=manifest.ignore_id)
    meta = class_metadata([c.model_dump() for c in manifest.classes])
    ignore = manifest.ignore_id
    if not drawn:
        sources = LabelSources(sources.rasters, sources.vectors, sources.vector_paths, sources.nodata)
    single = len(sources.rasters) == 1 and not sources.vectors and not sources.drawn
    if single and sources.nodata[sources.rasters[0].path] in (None, ignore):
        info = sources.rasters[0]
        vrt = wrap_vrt(info.path, descriptions=["class"], nodata=ignore, colormap=cmap, band_metadata=meta)
        write_cog(vrt, dst, label_opts, None if info.grid.same_as(grid) else grid)
        return
    mosaic = scratch / f"{dst.stem}.mosaic.tif"
    _mosaic(sources, grid, ignore, mosaic)
    vrt = wrap_vrt(mosaic, descriptions=["class"], nodata=ignore, colormap=cmap, band_metadata=meta)
    write_cog(vrt, dst, label_opts)
    mosaic.unlink()


def _mosaic(sources: LabelSources, grid: Grid, ignore: int, dst: Path) -> None:
    """Window by window, the first source with a label (not nodata, not ignore) wins: drawn, rasters, vectors."""
    dtype = "uint16" if any(np.dtype(r.dtype).itemsize == 2 for r in sources.rasters) else "uint8"
    drawn = [_indexed(f, grid) for f in sources.drawn]
    vectors = [_indexed(f, grid) for f in sources.vectors]
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": dtype,
               "crs": grid.crs, "transform": grid.transform, "tiled": True, "blockxsize": 256,
               "blockysize": 256, "nodata": ignore, "compress": "zstd", "BIGTIFF": "IF_SAFER"}
    warped = []
    for info in sources.rasters:
        src = rasterio.open(info.path)
        nodata = sources.nodata[info.path]
        warped.append((src, WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                                      height=grid.height, resampling=Resampling.nearest,
                                      src_nodata=nodata, nodata=nodata if nodata is not None else ignore), nodata))
    try:
        with rasterio.open(dst, "w", **profile) as out:
            for r0 in range(0, grid.height, MOSAIC_WINDOW):
                for c0 in range(0, grid.width, MOSAIC_WINDOW):
                    win = Window(c0, r0, min(MOSAIC_WINDOW, grid.width - c0), min(MOSAIC_WINDOW, grid.height - r0))
                    block = np.full((win.height, win.width), ignore, dtype=dtype)
                    _burn(drawn, block, win, grid, ignore)
                    for _, vrt, nodata in warped:
                        data = vrt.read(1, window=win)
                        fill = (block == ignore) & (data != ignore)
                        if nodata is not None:
                            fill &= data != nodata
                        block[fill] = data[fill]
                    _burn(vectors, block, win, grid, ignore)
                    out.write(block[None], window=win)
    finally:
        for src, vrt, _ in warped:
            vrt.close()
            src.close()


def _indexed(frame: gpd.GeoDataFrame, grid: Grid) -> tuple[gpd.GeoDataFrame, STRtree]:
    """Vector labels in the grid's CRS and their spatial index."""
    frame = frame.to_crs(grid.crs)
    return frame, STRtree(frame.geometry.values)


def _burn(frames: list[tuple[gpd.GeoDataFrame, STRtree]], block: np.ndarray, win: Window, grid: Grid,
          ignore: int) -> None:
    """Burn the polygons into the pixels of ``block`` (window ``win``) that hold no label yet."""
    wt = window_transform(win, grid.transform)
    wbox = box(*rasterio.windows.bounds(win, grid.transform))
    for frame, tree in frames:
        idx = tree.query(wbox)
        if len(idx) == 0:
            continue
        sub = frame.iloc[np.sort(idx)]
        burned = rasterize(zip(sub.geometry, sub["class_id"].astype(int), strict=True), out_shape=block.shape,
                           transform=wt, fill=ignore, dtype=block.dtype)
        fill = (block == ignore) & (burned != ignore)
        block[fill] = burned[fill]
