"""``geossl ingest``: manifest in, analysis-ready COGs and a catalog out.

Steps: check every input (cheap metadata first, then a lazy scan of the labels) → decide the target grid →
skip if the catalog says the same inputs were already ingested → write image and label COGs per scene on
the Dask cluster → band statistics from the written images → splits → catalog. Everything is built in a
staging folder beside ``--out`` and moved in only when all of it succeeded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely import box, unary_union
from shapely.geometry import mapping, shape

import geossl
from geossl.catalog import CATALOG_NAME, Catalog, SceneEntry, SplitCollection, SplitFeature, load_catalog
from geossl.config import stable_hash
from geossl.errors import InputError
from geossl.ingest.drawn import check_inside, check_overlaps
from geossl.ingest.grid import TargetGrid, target_grid
from geossl.ingest.inspect import RASTER_ERRORS, RasterInfo, check_imagery, inspect_raster
from geossl.ingest.labels import LabelSources, check_labels, write_aligned_labels
from geossl.ingest.options import IngestOptions
from geossl.ingest.prior import PriorSources, check_prior, write_aligned_prior
from geossl.ingest.splits import (
    block_class_shares,
    block_layout,
    block_splits,
    region_bounds,
    region_splits,
    with_drawn,
)
from geossl.ingest.stats import band_statistics, value_counts
from geossl.io.atomic import publish, staging_dir, write_text_atomic
from geossl.io.cog import CogOptions, Grid, wrap_vrt, write_cog
from geossl.io.lazy import read_lazy, read_lazy_mask
from geossl.io.names import scene_ids
from geossl.io.style import raster_qml
from geossl.manifest import Manifest, ResolvedInputs, Split, load_manifest, resolve_inputs
from geossl.parallel import gather_progress, use_client

log = logging.getLogger(__name__)

#: The catalog's folder of aligned prior maps (manifest ``prior:``), beside ``images/`` and ``labels/``.
PRIORS = "priors"
#: Staging folder of the labels without the drawn ones (not published).
UNDRAWN = ".undrawn"
#: How the image COGs mark a warp's empty pixels where the imagery declares no nodata (an internal mask; before:
#: the dtype's maximum, 255 for 8-bit). Part of the input hash: a catalog of the earlier way is ingested again.
EMPTY_PIXELS = "internal mask"


def input_hash(manifest: Manifest, inputs: ResolvedInputs, options: IngestOptions) -> str:
    """Hash of what decides the outputs: input files, drawn layers, manifest, COG options, the way of writing.

    Input files by path, size and modification time; drawn label layers by their content.
    """
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs.all_files()]
    return stable_hash(files, inputs.drawn_digests(), manifest.model_dump(mode="json"), options.compress,
                       options.blocksize, geossl.__version__, EMPTY_PIXELS)


def _up_to_date(out: Path, digest: str) -> bool:
    if not (out / CATALOG_NAME).is_file():
        return False
    try:
        catalog = load_catalog(out)
    except InputError:
        return False
    if catalog.input_hash != digest:
        return False
    return all((out / rel).is_file() and (out / rel).stat().st_size == size
               for rel, size in catalog.outputs.items())


def _footprint_wgs84(grid: Grid) -> dict[str, Any]:
    minx, miny, maxx, maxy = grid.bounds
    edge = max(maxx - minx, maxy - miny) / 20  # densify so curved edges are followed
    geometry: dict[str, Any] = transform_geom(grid.crs, "EPSG:4326", mapping(box(*grid.bounds).segmentize(edge)))
    return geometry


def ingest(manifest_path: str | Path, options: IngestOptions, client: Client | None = None) -> Path:
    """Run the ingest; return the catalog's path. Raises :class:`InputError` on bad input.

    ``client``: a Dask client to run on (a pipeline run's), else one is started from ``options`` for the ingest.
    """
    manifest_path = Path(manifest_path)
    manifest = load_manifest(manifest_path)
    inputs = resolve_inputs(manifest, manifest_path, options.data_root)
    imagery = [inspect_raster(p, "imagery") for p in inputs.imagery]
    bands = check_imagery(imagery, manifest.imagery.bands)
    target = target_grid(manifest.grid, imagery[0].grid)
    out = options.out.absolute()
    if out.exists() and not out.is_dir():
        raise InputError(out, "output exists and is not a folder")
    digest = input_hash(manifest, inputs, options)
    if not options.force and _up_to_date(out, digest):
        log.info("%s is up to date with %s; nothing to do", out / CATALOG_NAME, manifest_path)
        return out / CATALOG_NAME

    with use_client(client, options.scheduler, options.workers) as client, staging_dir(out) as stage:
        labels = None
        if manifest.labels is not None:
            labels = check_labels(client, manifest, inputs.label_rasters, inputs.label_vectors, imagery,
                                  options.quiet, inputs.label_drawn)
            check_overlaps(labels.drawn, labels.drawn_from, target.crs, abs(target.res[0] * target.res[1]), manifest)
        prior = None
        if manifest.prior is not None:
            prior = check_prior(client, manifest, inputs.prior_rasters, imagery, options.quiet)
        catalog = _build(client, manifest, inputs, imagery, bands, target, labels, prior, digest, stage, options)
        files = sorted(catalog.outputs)
        catalog.write(stage)
        publish(stage, out, files + [CATALOG_NAME], last=CATALOG_NAME)
    _remove_stale(out, set(catalog.outputs) | {CATALOG_NAME})
    log.info("ingested %d scene(s) of %s into %s", len(catalog.scenes), manifest.name, out)
    return out / CATALOG_NAME


@dataclass(frozen=True)
class _Scenes:
    """The scenes to ingest: ids, what inspection found, their grids on the target lattice, bands and nodata.

    ``masked``: the imagery declares no nodata and some scene is warped, so the pixels a warp leaves empty are
    marked by the images' internal masks (every source value is kept: none can stand for "empty").
    """

    ids: list[str]
    imagery: list[RasterInfo]
    grids: list[Grid]
    bands: list[str]
    nodata: float | None
    masked: bool = False

    def images(self, folder: Path) -> list[Path]:
        """Where the scenes' image COGs go in ``folder``."""
        return [folder / "images" / f"{sid}.tif" for sid in self.ids]

    def labels(self, folder: Path) -> list[Path]:
        """Where the scenes' label COGs go in ``folder``."""
        return [folder / "labels" / f"{sid}.tif" for sid in self.ids]

    def priors(self, folder: Path) -> list[Path]:
        """Where the scenes' prior COGs go in ``folder``."""
        return [folder / PRIORS / f"{sid}.tif" for sid in self.ids]

    def undrawn(self, folder: Path) -> list[Path]:
        """Where the scenes' labels without the drawn ones go in ``folder`` (the blocks are assigned from them)."""
        return [folder / UNDRAWN / f"{sid}.tif" for sid in self.ids]


def _build(client: Any, manifest: Manifest, inputs: ResolvedInputs, imagery: list[RasterInfo],
           bands: list[str], target: TargetGrid, labels: LabelSources | None, prior: PriorSources | None,
           digest: str, stage: Path, options: IngestOptions) -> Catalog:
    """Write every COG into ``stage``, then measure them, draw the splits and describe it all in a catalog."""
    scenes = _scenes(manifest, inputs, imagery, bands, target)
    _write_cogs(client, scenes, manifest, labels, prior, stage, options)
    label_paths = scenes.labels(stage) if labels is not None else []
    arrays = [read_lazy(p) for p in scenes.images(stage)]
    masks = [read_lazy_mask(p) for p in scenes.images(stage)]
    stats = band_statistics(client, arrays, scenes.nodata, bands, options.quiet, masks)
    per_scene = [band_statistics(client, [a], scenes.nodata, bands, True, [m]) for a, m in zip(arrays, masks,
                 strict=True)] if len(arrays) > 1 else [stats]
    class_counts = _class_counts(client, manifest, inputs, label_paths)
    undrawn = _undrawn(manifest, labels)
    features = _split_features(manifest, inputs, scenes, target, scenes.undrawn(stage) if undrawn else label_paths)
    if undrawn:
        shutil.rmtree(stage / UNDRAWN)
    if labels is not None and labels.drawn:
        check_inside(labels.drawn, labels.drawn_from, unary_union([shape(f.geometry) for f in features
                                                                   if f.properties.split == Split.UNLABELED]),
                     target.crs)
        features = with_drawn(features, unary_union([g for f in labels.drawn for g in f.to_crs(target.crs).geometry]))
    splits = SplitCollection(features=features)
    write_text_atomic(stage / "splits.geojson", json.dumps(_geojson_wgs84(splits, target.crs)))
    entries = [
        SceneEntry(
            id=sid, source=str(info.path), image=f"images/{sid}.tif",
            labels=f"labels/{sid}.tif" if labels is not None else None,
            prior=f"{PRIORS}/{sid}.tif" if prior is not None else None, width=grid.width, height=grid.height,
            transform=list(grid.transform)[:6], bounds=list(grid.bounds),
            footprint_wgs84=_footprint_wgs84(grid), band_stats=scene_stats,
        )
        for sid, info, grid, scene_stats in zip(scenes.ids, imagery, scenes.grids, per_scene, strict=True)
    ]
    outputs = {str(path.relative_to(stage)): path.stat().st_size for path in sorted(stage.rglob("*"))
               if path.is_file()}
    return Catalog(
        name=manifest.name, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        geossl_version=geossl.__version__, input_hash=digest, crs=target.crs.to_wkt(),
        resolution=list(target.res), bands=bands, dtype=imagery[0].dtype,
        nodata=None if scenes.nodata is None or np.isnan(scenes.nodata) else scenes.nodata,
        classes=manifest.classes, ignore_id=manifest.ignore_id, band_stats=stats,
        class_counts={str(k): v for k, v in sorted(class_counts.items())}, scenes=entries, splits=splits,
        outputs=outputs, manifest=manifest,
    )


def _scenes(manifest: Manifest, inputs: ResolvedInputs, imagery: list[RasterInfo], bands: list[str],
            target: TargetGrid) -> _Scenes:
    """The scenes on the target grid, the nodata value of the images written (the imagery's, if any) or a mask."""
    grids = [target.grid_for(info.grid) for info in imagery]
    nodata = manifest.imagery.nodata if manifest.imagery.nodata is not None else imagery[0].nodata
    masked = nodata is None and any(not g.same_as(i.grid) for g, i in zip(grids, imagery, strict=True))
    if masked:
        log.info("imagery declares no nodata; an internal mask marks the pixels outside the scenes after "
                 "alignment (every pixel value is kept)")
    return _Scenes(ids=scene_ids(inputs.imagery), imagery=imagery, grids=grids, bands=bands, nodata=nodata,
                   masked=masked)


def _write_cogs(client: Any, scenes: _Scenes, manifest: Manifest, labels: LabelSources | None,
                prior: PriorSources | None, stage: Path, options: IngestOptions) -> None:
    """Write the image (label, prior) COG of every scene on the Dask cluster, and the class layers' QGIS style."""
    (stage / "images").mkdir()
    (stage / "labels").mkdir()
    if prior is not None:
        (stage / PRIORS).mkdir()
    undrawn = _undrawn(manifest, labels)
    if undrawn:
        (stage / UNDRAWN).mkdir()
    cog = options.cog()
    tasks = []
    for info, grid, image, label, prior_path, undrawn_path in zip(
            scenes.imagery, scenes.grids, scenes.images(stage), scenes.labels(stage), scenes.priors(stage),
            scenes.undrawn(stage), strict=True):
        vrt = wrap_vrt(info.path, descriptions=scenes.bands, nodata=scenes.nodata)
        warp = None if grid.same_as(info.grid) else grid
        if warp is not None:
            log.info("%s: aligning onto the target grid (%d x %d px)", info.path.name, grid.width, grid.height)
        tasks.append(client.submit(_write_image, vrt, info.path, image, cog, warp, scenes.masked, pure=False))
        if labels is not None:
            tasks.append(client.submit(write_aligned_labels, labels, manifest, grid, label, stage, cog, pure=False))
        if undrawn:
            tasks.append(client.submit(write_aligned_labels, labels, manifest, grid, undrawn_path,
                                       stage / UNDRAWN, cog, drawn=False, pure=False))
        if prior is not None:
            tasks.append(client.submit(write_aligned_prior, prior, manifest, grid, prior_path, stage, cog,
                                       pure=False))
    for _ in gather_progress(tasks, "writing COGs", options.quiet):
        pass
    qml = raster_qml(manifest.classes)
    styled = (scenes.labels(stage) if labels is not None else []) + (scenes.priors(stage) if prior is not None else [])
    for path in styled:
        write_text_atomic(path.with_suffix(".qml"), qml)


def _class_counts(client: Any, manifest: Manifest, inputs: ResolvedInputs, label_paths: list[Path]
                  ) -> dict[int, int]:
    """Labeled pixels of each class id over all label COGs; an error when labels were given but none fell."""
    counts: dict[int, int] = {}
    for path in label_paths:
        for value, count in value_counts(client, read_lazy(path), quiet=True).items():
            if value != manifest.ignore_id:
                counts[value] = counts.get(value, 0) + count
    if label_paths and not counts:
        raise InputError(str([*inputs.label_rasters, *inputs.label_vectors, *inputs.label_drawn][0]),
                         "no labeled pixel falls on the imagery")
    return counts


def _undrawn(manifest: Manifest, labels: LabelSources | None) -> bool:
    """Whether the labels are also written without the drawn ones: blocks are assigned from those."""
    return labels is not None and bool(labels.drawn) and manifest.splits.blocks is not None


def _split_features(manifest: Manifest, inputs: ResolvedInputs, scenes: _Scenes, target: TargetGrid,
                    label_paths: list[Path]) -> list[SplitFeature]:
    """The manifest's splits: generated blocks, or the regions drawn by hand."""
    if manifest.splits.regions is not None:
        return region_splits(manifest.splits.regions, inputs.region_files, target.crs)
    cfg = manifest.splits.blocks
    assert cfg is not None  # the manifest holds exactly one of the two
    bounds, rows, cols = block_layout(cfg, region_bounds(scenes.grids))
    shares = block_class_shares(label_paths, manifest.class_ids, bounds, rows, cols,
                                abs(target.res[0] * target.res[1]))
    return block_splits(cfg, bounds, shares)


def _write_image(vrt: str, source: Path, dst: Path, options: CogOptions, target: Grid | None,
                 mask_empty: bool) -> None:
    """Write one scene's COG (``mask_empty``: see :func:`write_cog`); a read failure (a corrupt file) names the source.

    The error is raised outside the ``except`` block on purpose: GDAL's exception cannot be pickled, and it
    must not travel back from a Dask worker as the cause of ours.
    """
    try:
        write_cog(vrt, dst, options, target, mask_empty=mask_empty)
        return
    except RASTER_ERRORS as exc:
        reason = str(exc).splitlines()[0]
    raise InputError(source, f"cannot read imagery: {reason}")


def _geojson_wgs84(splits: SplitCollection, crs: CRS) -> dict[str, Any]:
    """The splits as RFC 7946 GeoJSON (WGS84), for viewing in any GIS."""
    feats = [{**f.model_dump(mode="json", exclude_none=True), "geometry": transform_geom(crs, "EPSG:4326", f.geometry)}
             for f in splits.features]
    return {"type": "FeatureCollection", "features": feats}


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Remove files of an earlier ingest that this one no longer writes (scenes dropped from the manifest)."""
    for sub in ("images", "labels", PRIORS):
        folder = out / sub
        if folder.is_dir():
            for path in folder.iterdir():
                if str(path.relative_to(out)) not in keep and not path.name.startswith("."):
                    os.remove(path)
