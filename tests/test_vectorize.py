"""geossl vectorize end to end: seamless tiles, exact areas, attributes, styles, formats, sieve, simplify."""

import json
import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.features
import shapely
import yaml

from geossl.vectorize.run import VectorizeOptions, vectorize
from geossl.vectorize.sieve import sieve_array
from tests.conftest import run_cli
from tests.vectorize_helpers import speckled, write_classes

PIXEL = 100.0  # 10 m pixels


def _run(src, out, tile=32, **options):
    """Vectorize with small tiles (``tile`` px a side) so that a little raster spans many of them."""
    vectorize(src, VectorizeOptions(out=out, quiet=True, workers=2, tile_pixels=tile * tile, **options))
    return _read(out)


def _read(path):
    frame = pyogrio.read_dataframe(path, layer=path.stem if path.suffix == ".gpkg" else None)
    return frame


def _one_pass(src):
    """Reference: GDAL's polygonize of the whole raster at once, in map coordinates."""
    with rasterio.open(src) as ds:
        data, mask, transform = ds.read(1), ds.read_masks(1) > 0, ds.transform
    return [(shapely.geometry.shape(g), int(v)) for g, v in
            rasterio.features.shapes(data, mask=mask, transform=transform, connectivity=4)]


def test_region_across_four_tiles_is_one_polygon(tmp_path):
    data = np.full((64, 64), 1, np.uint8)
    data[20:44, 20:44] = 2  # a square centred on the corner where four 32 px tiles meet
    data[30:34, 30:34] = 3  # with a hole across the same corner
    src = write_classes(tmp_path / "four.tif", data)
    frame = _run(src, tmp_path / "four.gpkg")
    forest = frame[frame.class_id == 2]
    assert len(forest) == 1
    geom = forest.geometry.iloc[0]
    expected = shapely.box(500200, 5099560, 500440, 5099800).difference(shapely.box(500300, 5099660, 500340,
                                                                                     5099700))
    assert geom.equals(expected)
    assert forest.area_m2.iloc[0] == pytest.approx((24 * 24 - 16) * PIXEL, rel=1e-12)
    assert len(frame) == 3


def test_tiled_output_equals_one_pass_polygonize(tmp_path):
    data = speckled(150, seed=1)
    src = write_classes(tmp_path / "speckle.tif", data)
    frame = _run(src, tmp_path / "speckle.gpkg")
    reference = _one_pass(src)
    assert len(frame) == len(reference) > 1000
    geoms = frame.geometry.values
    ref_geoms = np.array([g for g, _ in reference])
    mine, theirs = shapely.STRtree(ref_geoms).query(shapely.point_on_surface(geoms), predicate="within")
    assert sorted(theirs.tolist()) == list(range(len(reference)))
    assert shapely.equals(geoms[mine], ref_geoms[theirs]).all()
    assert (frame.class_id.values[mine] == np.array([v for _, v in reference])[theirs]).all()


def test_coverage_is_exact_valid_and_without_overlaps(tmp_path):
    data = speckled(150, seed=2)
    src = write_classes(tmp_path / "cover.tif", data)
    frame = _run(src, tmp_path / "cover.gpkg")
    geoms = frame.geometry.values
    assert shapely.is_valid(geoms).all()
    assert set(shapely.get_type_id(geoms).tolist()) == {3}  # Polygon, never a collection
    union = shapely.union_all(geoms)
    valid_area = np.count_nonzero(data) * PIXEL
    assert union.area / valid_area == pytest.approx(1, abs=1e-9)
    assert shapely.area(geoms).sum() / valid_area == pytest.approx(1, abs=1e-9)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="overlaps")
    assert len(left) == 0
    np.testing.assert_allclose(frame.area_m2, shapely.area(geoms), rtol=1e-12)
    assert shapely.coverage_is_valid(geoms)  # edge-matched: what coverage simplification needs


def test_attributes_on_a_hand_made_raster(tmp_path):
    data = np.array([[1, 1, 2, 2, 0],
                     [1, 3, 2, 2, 0],
                     [1, 1, 1, 2, 7]], dtype=np.uint8)
    src = write_classes(tmp_path / "hand.tif", data)
    conf = tmp_path / "conf.tif"
    with rasterio.open(src) as ds:
        profile = ds.profile | {"dtype": "float32", "nodata": -1.0}
    confidence = np.array([[0.5, 0.7, 0.9, 0.9, 0.2],
                           [0.6, 0.4, -1.0, 0.8, 0.2],
                           [0.6, 0.8, 0.8, 0.3, 0.1]], dtype=np.float32)
    with rasterio.open(conf, "w", **profile) as dst:
        dst.write(confidence, 1)
    frame = _run(src, tmp_path / "hand.gpkg", confidence=conf).sort_values("class_id")
    assert frame.crs.to_epsg() == 32633
    assert list(frame.columns) == ["class_id", "class_name", "area_m2", "mean_confidence", "geometry"]
    assert frame.class_id.tolist() == [1, 2, 3, 7]
    assert frame.class_name.tolist() == ["Water", "Forest", "Crops & fields", "class 7"]
    assert frame.area_m2.tolist() == [600.0, 500.0, 100.0, 100.0]
    expected = [np.mean([0.5, 0.7, 0.6, 0.6, 0.8, 0.8]), np.mean([0.9, 0.9, 0.8, 0.3]), 0.4, 0.1]
    np.testing.assert_allclose(frame.mean_confidence, expected, rtol=1e-6)  # nodata confidence left out
    water = frame.geometry.iloc[0]
    assert water.equals(shapely.Polygon([(500000, 5100000), (500020, 5100000), (500020, 5099990),
                                         (500010, 5099990), (500010, 5099980), (500030, 5099980),
                                         (500030, 5099970), (500000, 5099970)]))


@pytest.mark.parametrize("fmt", ["gpkg", "fgb"])
def test_all_nodata_gives_an_empty_layer_with_full_schema(tmp_path, fmt):
    src = write_classes(tmp_path / "empty.tif", np.zeros((40, 40), np.uint8))
    out = tmp_path / f"empty.{fmt}"
    result = run_cli("vectorize", src, "--out", out)
    assert result.exit_code == 0, result.output
    info = pyogrio.read_info(out, layer="empty" if fmt == "gpkg" else None)
    assert info["features"] in (0, -1) and len(_read(out)) == 0
    assert list(info["fields"]) == ["class_id", "class_name", "area_m2"]
    assert info["geometry_type"] == "Polygon" and "32633" in info["crs"]
    assert (tmp_path / "empty.qml").is_file()


def test_embedded_style_lists_every_class(tmp_path):
    data = speckled(64, seed=3)
    data[5, 5] = 9  # a class the metadata does not know
    src = write_classes(tmp_path / "styled.tif", data)
    out = tmp_path / "styled.gpkg"
    result = run_cli("vectorize", src, "--out", out)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(out) as db:
        rows = db.execute("SELECT f_table_name, f_geometry_column, styleName, styleQML, useAsDefault "
                          "FROM layer_styles").fetchall()
        contents = dict(db.execute("SELECT table_name, data_type FROM gpkg_contents").fetchall())
        index = db.execute("SELECT rtreecheck('rtree_styled_geom')").fetchone()[0]
        indexed = db.execute("SELECT count(*) FROM rtree_styled_geom").fetchone()[0]
        rows_count = db.execute("SELECT count(*) FROM styled").fetchone()[0]
    assert contents == {"styled": "features", "layer_styles": "attributes"}
    assert index == "ok" and indexed == rows_count
    assert len(rows) == 1
    table, column, name, qml, default = rows[0]
    assert (table, column, name, default) == ("styled", "geom", "styled", 1)
    assert qml == (tmp_path / "styled.qml").read_text()
    renderer = ET.fromstring(qml.split("\n", 1)[1]).find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "class_id"
    categories = {(c.get("value"), c.get("label")) for c in renderer.iter("category")}
    assert categories == {("1", "Water"), ("2", "Forest"), ("3", "Crops & fields"), ("9", "class 9")}
    colors = [o.get("value") for o in renderer.iter("Option") if o.get("name") == "color"]
    assert "71,107,160,255" in colors  # Water's #476ba0


def test_classes_from_a_manifest(tmp_path):
    src = write_classes(tmp_path / "plain.tif", speckled(40, seed=4), classes=None)
    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": "m", "imagery": {"paths": ["x.tif"]},
        "classes": [{"id": 1, "name": "Lake", "color": "#0000ff"}, {"id": 2, "name": "Wood", "color": "#00ff00"},
                    {"id": 3, "name": "Field", "color": "#ffff00"}]}))
    out = tmp_path / "named.fgb"
    assert run_cli("vectorize", src, "--out", out, "--classes", manifest).exit_code == 0
    assert set(_read(out).class_name) == {"Lake", "Wood", "Field"}
    assert 'label="Lake"' in (tmp_path / "named.qml").read_text()


def test_geojson_and_geographic_area_name(tmp_path):
    data = speckled(40, seed=5)
    src = write_classes(tmp_path / "geo.tif", data, crs="EPSG:4326", res=0.001, origin=(10.0, 45.0))
    frame = _run(src, tmp_path / "geo.geojson", tile=16)
    assert "area_deg2" in frame.columns
    assert frame.area_deg2.sum() == pytest.approx(np.count_nonzero(data) * 1e-6, rel=1e-9)


def test_tiled_sieve_is_close_to_a_whole_raster_sieve(tmp_path):
    data = speckled(160, seed=6)
    valid = data > 0
    whole = sieve_array(data, valid, 6)  # GDAL's sieve over the whole raster at once
    src = write_classes(tmp_path / "sieve.tif", data)
    frame = _run(src, tmp_path / "sieve.gpkg", min_area=6 * PIXEL)
    with rasterio.open(src) as ds:
        transform = ds.transform
    ours = rasterio.features.rasterize(zip(frame.geometry, frame.class_id, strict=True), out_shape=data.shape,
                                       transform=transform, dtype=np.uint8)
    # Nearly the same pixels change, and nearly all to the same class (see geossl.vectorize.sieve for why not all).
    assert ((ours != data) != (whole != data)).mean() < 1e-3
    assert (ours == whole).mean() > 0.99
    assert len(frame) < len(_one_pass(src)) / 3
    assert shapely.area(shapely.union_all(frame.geometry.values)) == pytest.approx(valid.sum() * PIXEL, rel=1e-9)
    assert shapely.coverage_is_valid(frame.geometry.values)
    # The polygons are exactly those of the sieved raster.
    reference = [shapely.geometry.shape(g) for g, _ in
                 rasterio.features.shapes(ours, mask=valid, transform=transform, connectivity=4)]
    assert len(frame) == len(reference)


def test_simplified_coverage_has_no_gaps_or_overlaps(tmp_path):
    data = speckled(128, seed=7)
    src = write_classes(tmp_path / "simple.tif", data)
    plain = _run(src, tmp_path / "plain.gpkg")
    frame = _run(src, tmp_path / "simple.gpkg", min_area=4 * PIXEL, simplify=15.0)
    geoms = frame.geometry.values
    assert shapely.is_valid(geoms).all()
    assert shapely.coverage_is_valid(geoms)
    assert len(shapely.STRtree(geoms).query(geoms, predicate="overlaps")[0]) == 0
    assert shapely.area(shapely.union_all(geoms)) == pytest.approx(shapely.area(geoms).sum(), rel=1e-9)
    assert shapely.get_num_coordinates(geoms).sum() < shapely.get_num_coordinates(plain.geometry.values).sum() / 2
    np.testing.assert_allclose(frame.area_m2, shapely.area(geoms), rtol=1e-12)


def test_cli_prints_the_output_and_takes_the_synthetic_labels(synth_dir, tmp_path):
    out = tmp_path / "labels.gpkg"
    result = run_cli("vectorize", synth_dir / "labels.tif", "--out", out, "--min-area", "500",
                     "--simplify", "10", "--workers", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    frame = _read(out)
    with rasterio.open(synth_dir / "labels.tif") as ds:
        tags = json.loads(ds.tags(1).get("classes", "[]")) if "classes" in ds.tags(1) else []
        valid = (ds.read_masks(1) > 0).sum() * abs(ds.transform.a * ds.transform.e)
    assert frame.area_m2.sum() == pytest.approx(valid, rel=0.02)
    assert shapely.is_valid(frame.geometry.values).all()
    assert set(frame.class_id) <= {c["id"] for c in tags} | set(range(1, 7))


def test_parquet_without_a_writer_is_refused(tmp_path):
    from geossl.vectorize.write import _parquet_writer

    if _parquet_writer():
        pytest.skip("a Parquet writer is installed here")
    src = write_classes(tmp_path / "p.tif", speckled(32, seed=8))
    result = run_cli("vectorize", src, "--out", tmp_path / "p.parquet")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "Error: --format: parquet needs GDAL's Parquet driver or the pyarrow package, and neither is installed; "
        "use gpkg, fgb or geojson"]
    assert list(tmp_path.iterdir()) == [src]


def test_geoparquet_when_a_writer_is_installed(tmp_path):
    from geossl.vectorize.write import _parquet_writer

    if not _parquet_writer():
        pytest.skip("neither GDAL's Parquet driver nor pyarrow is installed")
    data = speckled(48, seed=9)
    src = write_classes(tmp_path / "pq.tif", data)
    out = tmp_path / "pq.parquet"
    assert run_cli("vectorize", src, "--out", out).exit_code == 0
    frame = pyogrio.read_dataframe(out) if "Parquet" in pyogrio.list_drivers() else __import__(
        "geopandas").read_parquet(out)
    assert list(frame.columns) == ["class_id", "class_name", "area_m2", "geometry"]
    assert frame.area_m2.sum() == pytest.approx(np.count_nonzero(data) * PIXEL, rel=1e-9)
    assert frame.crs.to_epsg() == 32633


def test_awkward_output_name(tmp_path):
    src = write_classes(tmp_path / "a.tif", speckled(40, seed=10))
    out = tmp_path / 'land "cover" 2024.gpkg'
    assert run_cli("vectorize", src, "--out", out).exit_code == 0
    layer = 'land "cover" 2024'
    assert pyogrio.read_info(out, layer=layer)["features"] > 0
    with sqlite3.connect(out) as db:
        assert db.execute("SELECT rtreecheck(?)", (f"rtree_{layer}_geom",)).fetchone()[0] == "ok"
        assert db.execute("SELECT f_table_name FROM layer_styles").fetchone()[0] == layer
