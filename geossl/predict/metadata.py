"""The small JSON document beside each prediction: a STAC Item (classification and projection extensions)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

from rasterio.warp import transform_geom
from shapely import box
from shapely.geometry import mapping, shape

import geossl
from geossl.io.cog import Grid
from geossl.models import ModelBundle
from geossl.predict.scene import Scene

COG_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
EXTENSIONS = [
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
]


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_description(bundle: ModelBundle, checkpoint: Path | None) -> dict[str, Any]:
    """What identifies the model: checkpoint (path and hash), architecture, strategy, bands, training metrics."""
    info: dict[str, Any] = {
        "arch": bundle.model.arch, "encoder": bundle.model.encoder, "strategy": bundle.strategy,
        "bands": bundle.bands, "source_bands": bundle.source_bands, "patch_size": bundle.patch_size,
        "overlap": bundle.overlap,
        "created": bundle.created, "geossl_version": bundle.geossl_version, "metrics": bundle.metrics,
    }
    if checkpoint is not None:
        info = {"checkpoint": str(checkpoint.absolute()), "sha256": file_sha256(checkpoint), **info}
    return info


def footprint_wgs84(scene: Scene) -> dict[str, Any]:
    """The scene's outline in WGS84 (densified so that reprojected edges follow the curve)."""
    minx, miny, maxx, maxy = scene.grid.bounds
    edge = max(maxx - minx, maxy - miny) / 20
    geometry: dict[str, Any] = transform_geom(scene.grid.crs, "EPSG:4326",
                                              mapping(box(minx, miny, maxx, maxy).segmentize(edge)))
    return geometry


def projection(grid: Grid) -> dict[str, Any]:
    """A grid as STAC projection-extension fields."""
    return {"proj:code": grid.crs.to_string() if grid.crs.to_epsg() else None, "proj:wkt2": grid.crs.to_wkt(),
            "proj:shape": [grid.height, grid.width], "proj:transform": list(grid.transform)[:6]}


def resampled_from(scene: Scene) -> dict[str, Any] | None:
    """The scene file's own grid and the resampling, when it was predicted on the model's grid; else None."""
    if scene.warp is None:
        return None
    return {**projection(scene.warp.source), "resampling": scene.warp.method}


def scene_item(scene: Scene, bundle: ModelBundle, model: dict[str, Any], assets: dict[str, str],
               prediction: dict[str, Any], class_pixels: list[int], mean_confidence: float | None) -> dict[str, Any]:
    """A STAC Item describing a scene's prediction.

    Args:
        scene: the predicted scene.
        bundle: the model's bundle (classes).
        model: :func:`model_description`.
        assets: output name (``classes``, ``confidence``, ``probabilities``, ``style``) → file name.
        prediction: how it was predicted (window size, overlap, TTA, counts of windows...).
        class_pixels: predicted pixels per class (in the bundle's class order).
        mean_confidence: mean of the highest class probability over valid pixels.
    """
    geometry = footprint_wgs84(scene)
    classes = [{"value": c.id, "name": c.name, "color_hint": c.color.lstrip("#").upper()} for c in bundle.classes]
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    titles = {"classes": "Predicted land-cover class", "confidence": "Highest class probability x 255 (0 = nodata)",
              "probabilities": "Class probabilities x 254 (255 = nodata), one band per class",
              "style": "QGIS style of the class raster"}
    item_assets: dict[str, Any] = {}
    for name, href in assets.items():
        asset: dict[str, Any] = {"href": href, "title": titles.get(name, name)}
        if name == "style":
            asset.update(type="text/xml", roles=["style"])
        else:
            asset.update(type=COG_TYPE, roles=["data"])
        if name == "classes":
            asset["classification:classes"] = classes
        item_assets[name] = asset
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": EXTENSIONS,
        "id": scene.id,
        "bbox": list(shape(geometry).bounds),
        "geometry": geometry,
        "properties": {
            "datetime": now,
            "created": now,
            "title": f"geossl prediction of {scene.path.name}",
            **projection(scene.grid),
            "classification:classes": classes,
            "geossl:source": str(scene.path),
            "geossl:resampled_from": resampled_from(scene),
            "geossl:model": model,
            "geossl:prediction": prediction,
            "geossl:class_pixels": {str(c.id): int(n) for c, n in zip(bundle.classes, class_pixels, strict=True)},
            "geossl:mean_confidence": mean_confidence,
            "geossl:version": geossl.__version__,
        },
        "assets": item_assets,
        "links": [],
    }
