"""``geossl vectorize``: a class raster → one polygon layer with class, area and confidence, styled for QGIS.

Flow: check inputs → cut the raster into tiles on its Dask chunk grid (:class:`geossl.windows.Tiling`) →
with ``--min-area``, sieve tile by tile into a temporary raster (:mod:`.sieve`) → per tile on the Dask
cluster: trace polygons and, with ``--simplify``, simplify them with the tile's shared sides held fixed
(:mod:`.tile`, :mod:`.simplify`) → in this process, in tile order: write finished polygons in batches, join
border pieces row by row (:mod:`.merge`) → style (GeoPackage ``layer_styles`` and a ``.qml`` sidecar) → move
the files into place. Nothing appears under ``--out`` unless everything succeeded. Memory is bounded by the
tiles in flight and the regions open along one row of tiles, with or without ``--simplify``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from distributed import Client

from geossl.errors import InputError
from geossl.io.atomic import staging_dir
from geossl.io.lazy import block_aligned_chunks
from geossl.io.style import vector_qml
from geossl.manifest import ClassDef
from geossl.memory import release_free_memory
from geossl.parallel import ordered_results, use_client
from geossl.vectorize.merge import BorderMerger
from geossl.vectorize.options import VectorizeOptions
from geossl.vectorize.sieve import sieve_raster
from geossl.vectorize.source import (
    ClassRaster,
    area_field,
    check_confidence,
    complete_classes,
    min_area_pixels,
    open_class_raster,
)
from geossl.vectorize.tile import Attributes, TileSpec, polygonize_tile
from geossl.vectorize.write import Batch, Format, LayerWriter, resolve_format
from geossl.windows import Tiling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Summary:
    """What a run wrote."""

    path: Path
    style: Path
    polygons: int
    classes: list[ClassDef]


def vectorize(raster_path: Path, options: VectorizeOptions, client: Client | None = None) -> Summary:
    """Vectorize ``raster_path`` as described in the module docstring.

    ``client``: a Dask client to run on (a pipeline run's), else one is started from ``options`` for the run.
    """
    out = Path(options.out)
    fmt = resolve_format(out, options.format)
    raster = open_class_raster(Path(raster_path), options.classes)
    conf_nodata = check_confidence(options.confidence, raster.grid) if options.confidence else None
    style_path = out.with_suffix(".qml")
    for target in (out, style_path):
        if target.exists() and not options.overwrite:
            raise InputError(target, "already exists; use --overwrite to replace it")
    if out.exists() and out.is_dir():
        raise InputError(out, "is a folder")

    threshold = min_area_pixels(options.min_area, raster.pixel_area)
    rows, cols = block_aligned_chunks(raster.grid.height, raster.grid.width, raster.block, options.tile_pixels)
    tiling = Tiling(raster.grid.height, raster.grid.width, rows[0], cols[0])
    fields = ["class_id", "class_name", area_field(raster.grid.crs)] + (
        ["mean_confidence"] if options.confidence else [])
    log.info("vectorizing %s: %d x %d px in %d tiles, sieve below %d px, simplify %g -> %s (%s)",
             raster.path, raster.grid.width, raster.grid.height, len(tiling), threshold, options.simplify, out,
             fmt.name)

    with staging_dir(out) as stage:
        staged = stage / out.name
        with use_client(client, options.scheduler, options.workers) as client:
            source = raster.path
            if threshold > 1:
                source = stage / "sieved.tif"
                sieve_raster(client, raster, tiling, threshold, source, options.quiet)
            specs = _tile_specs(source, raster, tiling, options.confidence, conf_nodata, options.simplify)
            writer, seen = _polygonize(client, raster, tiling, specs, fmt, staged, fields, options)
        classes = complete_classes(raster.classes, seen, raster.colormap)
        qml = vector_qml(classes)
        count = writer.close(qml)
        (stage / style_path.name).write_text(qml)
        os.replace(staged, out)
        os.replace(stage / style_path.name, style_path)
    log.info("wrote %d polygons to %s (style %s)", count, out, style_path)
    return Summary(path=out, style=style_path, polygons=count, classes=classes)


def _tile_specs(source: Path, raster: ClassRaster, tiling: Tiling, confidence: Path | None,
                conf_nodata: float | None, simplify: float) -> list[TileSpec]:
    n_rows, n_cols = tiling.shape
    transform = tuple(raster.grid.transform)[:6]
    return [TileSpec(path=str(source), window=tiling.tile(i, j), read=tiling.with_halo(tiling.tile(i, j), 1),
                     shared=(i > 0, i < n_rows - 1, j > 0, j < n_cols - 1), transform=transform,
                     confidence_path=str(confidence) if confidence else None, confidence_nodata=conf_nodata,
                     simplify=simplify)
            for i, j in tiling]


def _polygonize(client: Client, raster: ClassRaster, tiling: Tiling, specs: list[TileSpec], fmt: Format,
                staged: Path, fields: list[str], options: VectorizeOptions) -> tuple[LayerWriter, set[int]]:
    """Run the tiles and write the polygons at ``staged``; return the writer (to close) and the class ids seen."""
    names = {c.id: c.name for c in raster.classes}
    id_type = np.int64 if np.dtype(raster.dtype).itemsize >= 4 and raster.dtype != "int32" else np.int32
    writer = LayerWriter(staged, fmt, options.out.stem, raster.grid.crs.to_wkt(), fields, id_type)
    n_rows, n_cols = tiling.shape
    merger = BorderMerger(n_rows, n_cols)
    seen: set[int] = set()

    def emit(wkb: np.ndarray, attrs: Attributes, bounds: np.ndarray, area: np.ndarray | None) -> None:
        """Write polygons; simplified ones with their measured ``area``, others by their pixel counts."""
        if len(wkb) == 0:
            return
        seen.update(np.unique(attrs.value).tolist())
        writer.write(_batch(wkb, attrs, bounds, names, raster.pixel_area, area if options.simplify > 0 else None,
                            options.confidence is not None, id_type))

    workers = max(1, sum(client.nthreads().values()))
    results = ordered_results(client, polygonize_tile, specs, max_in_flight=2 * workers, desc="vectorize",
                              quiet=options.quiet)
    for (i, j), result in zip(tiling, results, strict=True):
        emit(result.wkb, result.attrs, result.bounds, result.area)
        merger.add(i, j, result)
        del result
        if j == n_cols - 1:
            emit(*merger.finish_row(i))
        release_free_memory()  # what the tile's task freed, so that peak memory follows what is held
    return writer, seen


def _batch(wkb: np.ndarray, attrs: Attributes, bounds: np.ndarray, names: dict[int, str], pixel_area: float,
           area: np.ndarray | None, with_confidence: bool, id_type: type) -> Batch:
    """Attribute columns for polygons: class id and name, area (pixels × pixel area unless given), confidence."""
    ids, inverse = np.unique(attrs.value, return_inverse=True)
    labels = np.array([names.get(int(v), f"class {int(v)}") for v in ids], dtype=object)
    columns = [attrs.value.astype(id_type),
               labels[inverse.ravel()],
               attrs.count * pixel_area if area is None else area]
    if with_confidence:
        with np.errstate(invalid="ignore", divide="ignore"):
            columns.append(np.where(attrs.conf_n > 0, attrs.conf_sum / np.maximum(attrs.conf_n, 1), np.nan))
    return Batch(wkb=wkb, columns=columns, bounds=bounds)
