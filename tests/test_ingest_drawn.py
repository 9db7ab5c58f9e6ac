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
from geossl.errors import InputError
from geossl.ingest.drawn import read_drawn
from geossl.ingest.run import IngestOptions, ingest
from geossl.ingest.splits import with_drawn
from geossl.io.layers import LABEL_LAYER, LayerSource, resolve_layer, split_source
from geossl.manifest import load_manifest
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
# In the synthetic catalog (seed 3) block r0c1 is unlabeled and r0c0 test (tests/test_suggest.py relies on the same).
INSIDE = shapely.box(501400, 5099000, 501800, 5099400)  # in r0c1
ACROSS = shapely.box(501100, 5099500, 501500, 5099700)  # r0c0 (test) and r0c1
CROPLAND, WATER = 6, 1


def _drawn_data(synth_dir: Path, folder: Path, classes: tuple[str | None, ...] = ("cropland", str(WATER)),
                geometries: tuple[shapely.Geometry, ...] = (INSIDE, ACROSS), crs: str = "EPSG:32633",
                layer: str | None = None) -> tuple[Path, Path]:
    """A copy of the synthetic data with drawn.gpkg (classes as QGIS users type them), and a manifest naming it.

    With ``layer``, the polygons go to that layer after a decoy one, and the manifest names it QGIS's way.
    """
    data = folder / "data"
    shutil.copytree(synth_dir, data)
    frame = gpd.GeoDataFrame({"class": list(classes)}, geometry=list(geometries), crs="EPSG:32633").to_crs(crs)
    if layer is not None:
        gpd.GeoDataFrame({"rank": [1]}, geometry=[INSIDE], crs="EPSG:32633").to_file(data / "drawn.gpkg",
                                                                                    layer="windows")
    frame.to_file(data / "drawn.gpkg", driver="GPKG", layer=layer)
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["labels"]["drawn"] = ["drawn.gpkg" if layer is None else f"drawn.gpkg|layername={layer}"]
    path = folder / "drawn.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return data, path


def _refused(data: Path, manifest: Path, out: Path) -> str:
    """The one line ``geossl ingest`` refuses with (exit 2, no catalog written)."""
    result = run_cli("ingest", manifest, "--data-root", data, "--out", out, "--workers", "1")
    assert result.exit_code == 2, result.output
    assert not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


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


@pytest.mark.parametrize("unknown", ["42", "Orchard"])
def test_a_drawn_label_of_a_class_the_manifest_lacks_is_refused(synth_dir, tmp_path, unknown):
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", unknown))
    line = _refused(data, manifest, tmp_path / "catalog")
    assert line.startswith(f"Error: {data / 'drawn.gpkg'}: attribute 'class' has values that match no class: "
                           f"'{unknown}'")


def test_a_drawn_label_without_a_class_is_refused_by_its_feature_id(synth_dir, tmp_path):
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", None))
    assert _refused(data, manifest, tmp_path / "catalog") == (
        f"Error: {data / 'drawn.gpkg'}: no class in attribute 'class' for feature 2; choose one in QGIS's "
        "attribute form, or delete them")


def test_a_drawn_label_wholly_outside_the_unlabeled_split_is_refused(synth_dir, tmp_path):
    in_test_block = shapely.box(500200, 5099200, 500400, 5099400)  # r0c0
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", "Water", "Water"),
                                 geometries=(INSIDE, ACROSS, in_test_block))
    line = _refused(data, manifest, tmp_path / "catalog")
    assert line.startswith(f"Error: {data / 'drawn.gpkg'}: wholly outside the unlabeled split: feature 3; ")


def test_drawn_labels_of_different_classes_may_not_overlap(synth_dir, tmp_path):
    over_inside = shapely.box(501700, 5099300, 501900, 5099500)  # 100 x 100 m of it inside INSIDE: 100 px
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", "Water"), geometries=(INSIDE, over_inside))
    line = _refused(data, manifest, tmp_path / "catalog")
    assert line.startswith(f"Error: {data / 'drawn.gpkg'}: feature 1 (Cropland) and feature 2 (Water) overlap over "
                           "100.0 pixels: a pixel holds one class")


def test_a_drawn_point_is_refused(synth_dir, tmp_path):
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("Cropland", "Water"),
                                 geometries=(INSIDE, shapely.Point(501500, 5099100)))
    line = _refused(data, manifest, tmp_path / "catalog")
    assert line == f"Error: {data / 'drawn.gpkg'}: drawn labels must be polygons: feature 2 (Point)"


def test_drawn_labels_in_another_crs_are_reprojected_and_read_from_their_layer(drawn_catalog, synth_dir, tmp_path):
    """Same polygons in WGS84 in a layer of a two-layer GeoPackage: the same labels; overlaps of one class pass."""
    same_class_overlap = shapely.box(501700, 5099300, 501900, 5099500)
    data, manifest = _drawn_data(synth_dir, tmp_path, classes=("cropland", str(WATER), "Cropland"),
                                 geometries=(INSIDE, ACROSS, INSIDE.intersection(same_class_overlap)),
                                 crs="EPSG:4326", layer="mine")
    out = tmp_path / "catalog"
    assert run_cli("ingest", manifest, "--data-root", data, "--out", out, "--workers", "1").exit_code == 0
    theirs = drawn_catalog[1]
    with rasterio.open(out / "labels" / "scene.tif") as mine, rasterio.open(theirs / "labels" / "scene.tif") as ref:
        assert np.array_equal(mine.read(1), ref.read(1))
    gained = [shapely.geometry.shape(f.geometry) for f in load_catalog(out).splits.features if f.properties.row is None]
    expected = [shapely.geometry.shape(f.geometry) for f in load_catalog(theirs).splits.features
                if f.properties.row is None]
    assert gained[0].symmetric_difference(expected[0]).area == pytest.approx(0, abs=1e-3)
    stamp = (out / "catalog.json").stat().st_mtime_ns
    gpd.GeoDataFrame({"rank": [2]}, geometry=[ACROSS], crs="EPSG:32633").to_file(data / "drawn.gpkg", layer="windows")
    assert run_cli("ingest", manifest, "--data-root", data, "--out", out, "--workers", "1").exit_code == 0
    assert (out / "catalog.json").stat().st_mtime_ns == stamp  # another layer changed: still up to date


def test_with_drawn_keeps_the_splits_when_nothing_is_drawn_in_the_unlabeled_area():
    from geossl.catalog import SplitFeature, SplitProperties

    block = shapely.box(0, 0, 10, 10)
    features = [SplitFeature(geometry=shapely.geometry.mapping(block), properties=SplitProperties(split="test"))]
    assert with_drawn(features, shapely.box(2, 2, 4, 4)) == features


def _two_layers(path: Path, names: tuple[str, str]) -> Path:
    for name in names:
        gpd.GeoDataFrame({"class": [6]}, geometry=[INSIDE], crs="EPSG:32633").to_file(path, layer=name)
    return path


def test_a_file_of_several_layers_is_read_at_its_labels_layer_or_the_one_named(tmp_path):
    path = _two_layers(tmp_path / "round1.gpkg", ("round1", LABEL_LAYER))
    assert resolve_layer(LayerSource(path)) == LABEL_LAYER
    assert resolve_layer(LayerSource(path, "round1")) == "round1"
    assert split_source(f"{path}|layername=round1") == (str(path), "round1")


@pytest.mark.parametrize(("source", "problem"), [
    ("{path}|layername=nope", "has no layer 'nope' (layers: a, b)"),
    ("{path}", "holds 2 layers (a, b) and none is named 'labels'; name one as {path}|layername=NAME"),
    ("{path}|layerid=1", "name a layer as PATH|layername=NAME (the only option read)"),
])
def test_a_layer_that_cannot_be_told_is_refused(tmp_path, source, problem):
    path = _two_layers(tmp_path / "two.gpkg", ("a", "b"))
    text = source.format(path=path)
    with pytest.raises(InputError) as caught:
        pattern, layer = split_source(text)
        resolve_layer(LayerSource(Path(pattern), layer))
    assert caught.value.where == text and caught.value.problem == problem.format(path=path)


def test_a_ring_crossing_itself_is_repaired_with_a_warning(tmp_path, caplog):
    bowtie = shapely.Polygon([(501400, 5099000), (501800, 5099400), (501800, 5099000), (501400, 5099400)])
    path = tmp_path / "bowtie.gpkg"
    gpd.GeoDataFrame({"class": ["Water"]}, geometry=[bowtie], crs="EPSG:32633").to_file(path)
    frame = read_drawn(LayerSource(path), load_manifest(MANIFEST))
    assert frame.geometry.is_valid.all() and frame.geometry.area.sum() == pytest.approx(bowtie.convex_hull.area / 2)
    assert f"{path}: feature 1 repaired" in caplog.text
