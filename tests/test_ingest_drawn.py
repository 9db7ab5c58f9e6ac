"""Labels drawn by an analyst (``labels.drawn``): burned first, and their area moves from unlabeled to labeled."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from rasterio.features import geometry_mask

from geossl.catalog import load_catalog
from geossl.data.module import plan_splits
from geossl.ingest.run import IngestOptions, ingest
from geossl.ingest.splits import with_drawn
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
# In the synthetic catalog (seed 3) block r0c1 is unlabeled and r0c0 test (tests/test_suggest.py relies on the same).
INSIDE = shapely.box(501400, 5099000, 501800, 5099400)  # in r0c1
ACROSS = shapely.box(501100, 5099500, 501500, 5099700)  # r0c0 (test) and r0c1
CROPLAND, WATER = 6, 1


def _drawn_data(synth_dir: Path, folder: Path, classes: tuple[str, str] = ("cropland", str(WATER))
                ) -> tuple[Path, Path]:
    """A copy of the synthetic data with drawn.gpkg (classes as QGIS users type them), and a manifest naming it."""
    data = folder / "data"
    shutil.copytree(synth_dir, data)
    frame = gpd.GeoDataFrame({"class": list(classes)}, geometry=[INSIDE, ACROSS], crs="EPSG:32633")
    frame.to_file(data / "drawn.gpkg", driver="GPKG")
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["labels"]["drawn"] = ["drawn.gpkg"]
    path = folder / "drawn.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return data, path


@pytest.fixture(scope="module")
def drawn_catalog(synth_dir, tmp_path_factory) -> tuple[Path, Path]:
    """The synthetic scene ingested with drawn labels: (manifest, catalog folder)."""
    folder = tmp_path_factory.mktemp("drawn")
    data, manifest = _drawn_data(synth_dir, folder)
    ingest(manifest, IngestOptions(out=folder / "catalog", data_root=data, workers=1, quiet=True))
    return manifest, folder / "catalog"


def _features(catalog: Path, split: str) -> list[shapely.Geometry]:
    return [shapely.geometry.shape(f.geometry) for f in load_catalog(catalog).splits.features
            if f.properties.split == split]


def test_drawn_labels_join_the_labeled_split_and_leave_the_others_where_they_were(drawn_catalog, synth_catalog):
    _, catalog = drawn_catalog
    for split in ("val", "test"):
        assert [g.wkt for g in _features(catalog, split)] == [g.wkt for g in _features(synth_catalog, split)]
    drawn = [f for f in load_catalog(catalog).splits.features if f.properties.row is None]  # the blocks have one
    assert len(drawn) == 1 and drawn[0].properties.split == "labeled"
    gained = shapely.geometry.shape(drawn[0].geometry)
    expected = shapely.union(INSIDE, shapely.intersection(ACROSS, shapely.box(501280, 5098720, 502560, 5100000)))
    assert gained.symmetric_difference(expected).area == pytest.approx(0, abs=1e-6)
    before = shapely.union_all(_features(synth_catalog, "unlabeled"))
    after = shapely.union_all(_features(catalog, "unlabeled"))
    assert after.area == pytest.approx(before.area - expected.area)
    assert not after.intersection(gained).area
    labeled_before = shapely.union_all(_features(synth_catalog, "labeled"))
    assert shapely.union_all(_features(catalog, "labeled")).area == pytest.approx(labeled_before.area + gained.area)


def test_drawn_labels_take_precedence_over_the_label_raster(drawn_catalog):
    _, catalog = drawn_catalog
    cat = load_catalog(catalog)
    with rasterio.open(catalog / cat.scenes[0].labels) as src:
        labels, transform = src.read(1), src.transform
    for geom, value in ((INSIDE, CROPLAND), (ACROSS, WATER)):
        inside = geometry_mask([geom], labels.shape, transform, invert=True)
        assert inside.sum() == geom.area / 100 and np.all(labels[inside] == value)


def test_training_counts_the_drawn_pixels_as_labeled(drawn_catalog, synth_catalog):
    _, catalog = drawn_catalog
    with_drawn_plan = plan_splits(load_catalog(catalog), catalog, None, 0)
    plain = plan_splits(load_catalog(synth_catalog), synth_catalog, None, 0)
    added = with_drawn_plan.labeled_counts - plain.labeled_counts
    assert added[CROPLAND - 1] >= INSIDE.area / 100
    assert added.sum() == (INSIDE.area + ACROSS.area - 180 * 200) / 100  # the 18 x 20 px in the test block stay out


def test_a_drawn_label_of_an_unknown_class_is_refused(synth_dir, tmp_path):
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", "42"))
    result = run_cli("ingest", manifest, "--data-root", data, "--out", tmp_path / "catalog", "--workers", "1")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"Error: {data / 'drawn.gpkg'}: attribute 'class' has values that "
                                            "match no class: '42'")
    assert not (tmp_path / "catalog").exists()


def test_with_drawn_keeps_the_splits_when_nothing_is_drawn_in_the_unlabeled_area():
    from geossl.catalog import SplitFeature, SplitProperties

    block = shapely.box(0, 0, 10, 10)
    features = [SplitFeature(geometry=shapely.geometry.mapping(block), properties=SplitProperties(split="test"))]
    assert with_drawn(features, shapely.box(2, 2, 4, 4)) == features
