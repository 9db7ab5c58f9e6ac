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
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely import box, unary_union
from shapely.geometry import mapping

import geossl
from geossl.catalog import CATALOG_NAME, Catalog, SceneEntry, load_catalog
from geossl.config import stable_hash
from geossl.errors import InputError
from geossl.ingest.grid import TargetGrid, target_grid
from geossl.ingest.inspect import RASTER_ERRORS, RasterInfo, check_imagery, inspect_raster
from geossl.ingest.labels import LabelSources, check_labels, write_aligned_labels
from geossl.ingest.options import IngestOptions
from geossl.ingest.splits import block_class_counts, block_splits, region_bounds, region_splits, with_drawn
from geossl.ingest.stats import band_statistics, value_counts
from geossl.io.atomic import publish, staging_dir, write_text_atomic
from geossl.io.cog import CogOptions, Grid, wrap_vrt, write_cog
from geossl.io.lazy import read_lazy
from geossl.io.names import scene_ids
from geossl.io.style import raster_qml
from geossl.manifest import Manifest, ResolvedInputs, load_manifest, resolve_inputs
from geossl.parallel import dask_client, gather_progress

log = logging.getLogger(__name__)


def _default_nodata(dtype: str) -> float:
    kind = np.dtype(dtype)
    if np.issubdtype(kind, np.floating):
        return float("nan")
    return float(np.iinfo(kind).max if np.issubdtype(kind, np.unsignedinteger) else np.iinfo(kind).min)


def input_hash(manifest: Manifest, inputs: ResolvedInputs, options: IngestOptions) -> str:
    """Hash of what decides the outputs: input files (path, size, mtime), manifest and COG options."""
    files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs.all_files()]
    return stable_hash(files, manifest.model_dump(mode="json"), options.compress, options.blocksize,
                       geossl.__version__)


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
    return transform_geom(grid.crs, "EPSG:4326", mapping(box(*grid.bounds).segmentize(edge)))


def ingest(manifest_path: str | Path, options: IngestOptions) -> Path:
    """Run the ingest; return the catalog's path. Raises :class:`InputError` on bad input."""
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

    with dask_client(options.scheduler, options.workers) as client, staging_dir(out) as stage:
        labels = None
        if manifest.labels is not None:
            labels = check_labels(client, manifest, inputs.label_rasters, inputs.label_vectors, imagery,
                                  options.quiet, inputs.label_drawn)
        catalog = _build(client, manifest, inputs, imagery, bands, target, labels, digest, stage, options)
        files = sorted(catalog.outputs)
        catalog.write(stage)
        publish(stage, out, files + [CATALOG_NAME], last=CATALOG_NAME)
    _remove_stale(out, set(catalog.outputs) | {CATALOG_NAME})
    log.info("ingested %d scene(s) of %s into %s", len(catalog.scenes), manifest.name, out)
    return out / CATALOG_NAME


def _build(client: Any, manifest: Manifest, inputs: ResolvedInputs, imagery: list[RasterInfo],
           bands: list[str], target: TargetGrid, labels: LabelSources | None, digest: str, stage: Path,
           options: IngestOptions) -> Catalog:
    ids = scene_ids(inputs.imagery)
    grids = [target.grid_for(info.grid) for info in imagery]
    dtype = imagery[0].dtype
    nodata = manifest.imagery.nodata if manifest.imagery.nodata is not None else imagery[0].nodata
    if nodata is None and any(not g.same_as(i.grid) for g, i in zip(grids, imagery, strict=True)):
        nodata = _default_nodata(dtype)
        log.warning("imagery declares no nodata; using %s for pixels outside the scenes after alignment", nodata)
    (stage / "images").mkdir()
    (stage / "labels").mkdir()
    undrawn = stage / ".undrawn" if labels is not None and labels.drawn and manifest.splits.blocks else None
    if undrawn is not None:
        undrawn.mkdir()
    cog = options.cog()

    tasks = []
    for sid, info, grid in zip(ids, imagery, grids, strict=True):
        vrt = wrap_vrt(info.path, descriptions=bands, nodata=nodata)
        warp = None if grid.same_as(info.grid) else grid
        if warp is not None:
            log.info("%s: aligning onto the target grid (%d x %d px)", info.path.name, grid.width, grid.height)
        tasks.append(client.submit(_write_image, vrt, info.path, stage / "images" / f"{sid}.tif", cog, warp,
                                   pure=False))
        if labels is not None:
            tasks.append(client.submit(write_aligned_labels, labels, manifest, grid,
                                       stage / "labels" / f"{sid}.tif", stage, cog, pure=False))
        if undrawn is not None:  # the labels the blocks are assigned from
            assert labels is not None
            tasks.append(client.submit(write_aligned_labels, labels, manifest, grid, undrawn / f"{sid}.tif",
                                       undrawn, cog, drawn=False, pure=False))
    for _ in gather_progress(tasks, "writing COGs", options.quiet):
        pass

    image_paths = [stage / "images" / f"{sid}.tif" for sid in ids]
    label_paths = [stage / "labels" / f"{sid}.tif" for sid in ids] if labels is not None else []
    arrays = [read_lazy(p) for p in image_paths]
    stats = band_statistics(client, arrays, nodata, bands, options.quiet)
    per_scene = [band_statistics(client, [a], nodata, bands, True) for a in arrays] if len(ids) > 1 else [stats]
    class_counts: dict[int, int] = {}
    qml = raster_qml(manifest.classes)
    for path in label_paths:
        write_text_atomic(path.with_suffix(".qml"), qml)
        for value, count in value_counts(client, read_lazy(path), quiet=True).items():
            if value != manifest.ignore_id:
                class_counts[value] = class_counts.get(value, 0) + count
    if labels is not None and not class_counts:
        raise InputError([*inputs.label_rasters, *inputs.label_vectors, *inputs.label_drawn][0],
                         "no labeled pixel falls on the imagery")

    block_labels = [undrawn / p.name for p in label_paths] if undrawn is not None else label_paths
    features = _split_features(manifest, inputs, region_bounds(grids), block_labels, labels, target.crs)
    if undrawn is not None:
        shutil.rmtree(undrawn)
    splits = {"type": "FeatureCollection", "crs": target.crs.to_string(), "features": features}
    write_text_atomic(stage / "splits.geojson", json.dumps(_geojson_wgs84(splits, target.crs)))

    scenes = [
        SceneEntry(
            id=sid, source=str(info.path), image=f"images/{sid}.tif",
            labels=f"labels/{sid}.tif" if labels is not None else None, width=grid.width, height=grid.height,
            transform=list(grid.transform)[:6], bounds=list(grid.bounds),
            footprint_wgs84=_footprint_wgs84(grid), band_stats=[s.to_dict() for s in scene_stats],
        )
        for sid, info, grid, scene_stats in zip(ids, imagery, grids, per_scene, strict=True)
    ]
    outputs = {}
    for path in sorted(stage.rglob("*")):
        if path.is_file():
            outputs[str(path.relative_to(stage))] = path.stat().st_size
    return Catalog(
        name=manifest.name, created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        geossl_version=geossl.__version__, input_hash=digest, crs=target.crs.to_wkt(),
        resolution=list(target.res), bands=bands, dtype=dtype,
        nodata=None if nodata is None or np.isnan(nodata) else nodata,
        classes=manifest.classes, ignore_id=manifest.ignore_id, band_stats=[s.to_dict() for s in stats],
        class_counts={str(k): v for k, v in sorted(class_counts.items())}, scenes=scenes, splits=splits,
        outputs=outputs, manifest=manifest.model_dump(mode="json"),
    )


def _split_features(manifest: Manifest, inputs: ResolvedInputs, bounds: tuple[float, float, float, float],
                    block_labels: list[Path], labels: LabelSources | None, crs: CRS) -> list[dict[str, Any]]:
    """The split features: blocks (assigned from ``block_labels``) or hand-drawn regions, then the drawn labels'."""
    if manifest.splits.blocks is not None:
        cfg = manifest.splits.blocks
        counts = block_class_counts(block_labels, manifest.ignore_id, [c.id for c in manifest.classes], bounds,
                                    cfg.rows, cfg.cols)
        features = block_splits(cfg, bounds, counts)
    else:
        assert manifest.splits.regions is not None
        features = region_splits(manifest.splits.regions, inputs.region_files, crs)
    if labels is not None and labels.drawn:
        features = with_drawn(features, unary_union([g for f in labels.drawn for g in f.to_crs(crs).geometry]))
    return features


def _write_image(vrt: str, source: Path, dst: Path, options: CogOptions, target: Grid | None) -> None:
    """Write one scene's COG; a read failure (a corrupt file) names the source file.

    The error is raised outside the ``except`` block on purpose: GDAL's exception cannot be pickled, and it
    must not travel back from a Dask worker as the cause of ours.
    """
    try:
        write_cog(vrt, dst, options, target)
        return
    except RASTER_ERRORS as exc:
        reason = str(exc).splitlines()[0]
    raise InputError(source, f"cannot read imagery: {reason}")


def _geojson_wgs84(collection: dict[str, Any], crs: CRS) -> dict[str, Any]:
    """The splits as RFC 7946 GeoJSON (WGS84), for viewing in any GIS."""
    feats = [{**f, "geometry": transform_geom(crs, "EPSG:4326", f["geometry"])} for f in collection["features"]]
    return {"type": "FeatureCollection", "features": feats}


def _remove_stale(out: Path, keep: set[str]) -> None:
    """Remove files of an earlier ingest that this one no longer writes (scenes dropped from the manifest)."""
    for sub in ("images", "labels"):
        folder = out / sub
        if folder.is_dir():
            for path in folder.iterdir():
                if str(path.relative_to(out)) not in keep and not path.name.startswith("."):
                    os.remove(path)
