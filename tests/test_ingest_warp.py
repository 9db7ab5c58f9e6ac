"""Warping onto the target grid: sub-metre pixels without GDAL warnings, and grids of non-square pixels."""

import logging
import warnings

import numpy as np
import rasterio
import yaml
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from geossl.catalog import load_catalog
from geossl.ingest.run import IngestOptions, ingest
from geossl.synth import SynthConfig, write_scene


def _reproject(path, crs):
    """Rewrite a label raster in another CRS (so ingest must warp it back onto the image grid)."""
    with rasterio.open(path) as src:
        data, profile, bounds = src.read(1), src.profile, src.bounds
        transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height, *bounds)
        out = np.zeros((height, width), dtype=data.dtype)
        reproject(data, out, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
                  dst_crs=crs, resampling=Resampling.nearest)
    profile.update(crs=crs, transform=transform, width=width, height=height)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(out, 1)


def _stretch_rows(path, factor):
    """Rewrite a raster with pixels ``factor`` times taller than wide (same pixels)."""
    with rasterio.open(path) as src:
        data, profile = src.read(), src.profile
    t = profile["transform"]
    profile["transform"] = rasterio.Affine(t.a, t.b, t.c, t.d, t.e * factor, t.f)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _ingest_collecting_gdal_messages(manifest, out, caplog):
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ingest(manifest, IngestOptions(out=out, workers=1, quiet=True))
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("rasterio")]
    messages += [str(w.message) for w in caught if "CPLE" in str(w.message) or "rasterio" in w.filename]
    return messages


def test_sub_metre_scene_is_warped_without_gdal_warnings(tmp_path, caplog):
    src = tmp_path / "src"
    write_scene(src, SynthConfig(size=256, tile=128, seed=1, resolution=0.5))
    _reproject(src / "labels.tif", "EPSG:3857")
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["grid"] = {"resolution": 0.75}  # imagery warped too
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    assert _ingest_collecting_gdal_messages(src / "manifest.yaml", out, caplog) == []
    scene = load_catalog(out).scenes[0]
    with rasterio.open(out / scene.image) as img, rasterio.open(out / scene.labels) as lab:
        assert img.res == (0.75, 0.75) and lab.res == img.res
        assert lab.transform == img.transform and lab.shape == img.shape
        assert (lab.read(1) > 0).mean() > 0.8


def test_labels_are_warped_onto_a_grid_of_non_square_pixels(tmp_path, caplog):
    src = tmp_path / "src"
    write_scene(src, SynthConfig(size=256, tile=128, seed=1, resolution=0.5))
    _stretch_rows(src / "scene.tif", 1.5)
    _stretch_rows(src / "labels.tif", 1.5)
    with rasterio.open(src / "labels.tif") as lab:
        truth = lab.read(1)
    _reproject(src / "labels.tif", "EPSG:3857")
    out = tmp_path / "out"
    assert _ingest_collecting_gdal_messages(src / "manifest.yaml", out, caplog) == []
    scene = load_catalog(out).scenes[0]
    with rasterio.open(out / scene.image) as img, rasterio.open(out / scene.labels) as lab:
        assert img.res == (0.5, 0.75)
        assert lab.transform == img.transform and lab.shape == img.shape
        assert (lab.read(1) == truth).mean() > 0.9
