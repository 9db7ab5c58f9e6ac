import json
import shutil

import numpy as np
import pytest
import rasterio
import yaml
from rasterio.enums import Resampling
from rasterio.features import shapes
from rasterio.warp import calculate_default_transform, reproject

from geossl.catalog import load_catalog
from geossl.ingest.run import IngestOptions, ingest
from tests.conftest import ROOT, run_cli


def _cog_layout(path):
    with rasterio.open(path) as src:
        return src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT"), src.profile.get("tiled"), src.overviews(1)


def test_ingest_synthetic_writes_cogs_stats_and_catalog(synth_dir, tmp_path):
    out = tmp_path / "out"
    result = run_cli("ingest", synth_dir / "manifest.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    catalog = load_catalog(out)
    scene = catalog.scenes[0]
    image, labels = out / scene.image, out / scene.labels
    layout, tiled, overviews = _cog_layout(image)
    assert layout == "COG" and tiled and overviews
    with rasterio.open(image) as img, rasterio.open(synth_dir / "scene.tif") as src:
        assert img.crs == src.crs and img.transform == src.transform and img.shape == src.shape
        assert img.descriptions == ("blue", "green", "red", "nir") and img.nodata == 0
        data = img.read()
        np.testing.assert_array_equal(data, src.read())
    with rasterio.open(labels) as lab:
        assert lab.colormap(1)[1][:3] == (0x47, 0x6B, 0xA0)
        assert json.loads(lab.tags(1)["classes"])[0]["name"] == "Water"
        assert lab.nodata == 0 and lab.overviews(1)
    # Statistics over valid pixels only, equal to NumPy's.
    valid = (data != 0).all(axis=0)
    for band, stats in zip(data, catalog.band_stats, strict=True):
        vals = band[valid].astype(float)
        assert stats.count == valid.sum()
        assert stats.mean == pytest.approx(vals.mean())
        assert stats.std == pytest.approx(vals.std())
        assert stats.p2 == np.percentile(vals, 2, method="inverted_cdf")
        assert stats.p98 == np.percentile(vals, 98, method="inverted_cdf")
        assert sum(stats.histogram.counts) == valid.sum()
    with rasterio.open(synth_dir / "labels.tif") as src:
        truth = np.bincount(src.read(1).ravel())
    assert catalog.class_counts == {str(k): int(v) for k, v in enumerate(truth) if k and v}
    splits = [f.properties.split for f in catalog.splits.features]
    assert len(splits) == 16 and {"labeled", "val", "test", "unlabeled"} <= set(splits)
    assert (out / "labels" / f"{scene.id}.qml").read_text().count("paletteEntry") == 6
    assert (out / "splits.geojson").is_file()


def test_rerun_on_unchanged_inputs_does_no_work_and_change_redoes(synth_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    out = tmp_path / "out"
    options = IngestOptions(out=out, quiet=True)
    ingest(src / "manifest.yaml", options)
    stamp = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    ingest(src / "manifest.yaml", options)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamp
    # A changed manifest (other split seed) is ingested again.
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["splits"]["blocks"]["seed"] = 7
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    ingest(src / "manifest.yaml", options)
    assert (out / "catalog.json").stat().st_mtime_ns != stamp[out / "catalog.json"]
    assert not [p for p in out.parent.iterdir() if "staging" in p.name]


def _reproject_labels(src_path, dst_path, crs):
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(src.crs, crs, src.width, src.height, *src.bounds)
        profile = {**src.profile, "crs": crs, "transform": transform, "width": width, "height": height}
        with rasterio.open(dst_path, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.nearest)


def test_labels_on_another_crs_are_aligned_onto_the_image_grid(synth_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    _reproject_labels(synth_dir / "labels.tif", src / "labels.tif", "EPSG:3857")
    out = tmp_path / "out"
    ingest(src / "manifest.yaml", IngestOptions(out=out, quiet=True))
    catalog = load_catalog(out)
    with rasterio.open(out / catalog.scenes[0].labels) as aligned, rasterio.open(synth_dir / "labels.tif") as truth:
        assert aligned.transform == truth.transform and aligned.crs == truth.crs
        agree = (aligned.read(1) == truth.read(1)).mean()
    assert agree > 0.95  # two nearest-neighbour resamplings through a CRS with other pixel sizes


def test_vector_labels_are_rasterized(synth_dir, tmp_path):
    import geopandas as gpd
    from shapely.geometry import shape

    with rasterio.open(synth_dir / "labels.tif") as src:
        data, transform, crs = src.read(1), src.transform, src.crs
    feats = [(shape(g), int(v)) for g, v in shapes(data, mask=data > 0, transform=transform)]
    frame = gpd.GeoDataFrame({"landcover": [v for _, v in feats]}, geometry=[g for g, _ in feats], crs=crs)
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    frame.to_crs("EPSG:4326").to_file(src / "labels.gpkg")
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["labels"] = {"vectors": ["labels.gpkg"], "class_field": "landcover"}
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    ingest(src / "manifest.yaml", IngestOptions(out=out, quiet=True))
    with rasterio.open(out / load_catalog(out).scenes[0].labels) as lab:
        assert (lab.read(1) == data).mean() > 0.97


def test_zion_labels_align_exactly_with_the_reference_grid(zion_root, tmp_path):
    out = tmp_path / "zion"
    result = run_cli("ingest", ROOT / "data_manifests" / "zion.yaml", "--data-root", zion_root, "--out", out)
    assert result.exit_code == 0, result.output
    catalog = load_catalog(out)
    scene = catalog.scenes[0]
    assert _cog_layout(out / scene.image)[0] == "COG" and _cog_layout(out / scene.labels)[2]
    with (
        rasterio.open(out / scene.labels) as lab,
        rasterio.open(zion_root / "zion" / "nlcd2011_zion_8class_on_landsat_grid.tif") as ref,
    ):
        assert lab.crs == ref.crs and lab.transform == ref.transform and lab.shape == ref.shape
        assert (lab.read(1) == ref.read(1)).mean() > 0.999
    assert catalog.class_counts["1"] == 1334 and catalog.class_counts["4"] == 848057
    assert catalog.crs and "32612" in rasterio.crs.CRS.from_wkt(catalog.crs).to_string()


def test_ingest_on_an_existing_dask_scheduler_gives_the_same_outputs(synth_dir, tmp_path):
    from distributed import LocalCluster

    ingest(synth_dir / "manifest.yaml", IngestOptions(out=tmp_path / "local", quiet=True))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        result = run_cli("ingest", synth_dir / "manifest.yaml", "--out", tmp_path / "remote",
                         "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.output
    local, remote = load_catalog(tmp_path / "local"), load_catalog(tmp_path / "remote")
    assert local.band_stats == remote.band_stats and local.class_counts == remote.class_counts
    for rel in ("images/scene.tif", "labels/scene.tif"):
        with rasterio.open(tmp_path / "local" / rel) as a, rasterio.open(tmp_path / "remote" / rel) as b:
            np.testing.assert_array_equal(a.read(), b.read())
