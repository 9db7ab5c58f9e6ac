"""Vector labels whose class attribute is an integer, numeric text or a class name (as QGIS writes them)."""

import shutil
import sqlite3

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import yaml
from rasterio.features import shapes
from shapely.geometry import shape

from geossl.catalog import load_catalog
from geossl.ingest.classes import class_id_of
from geossl.ingest.run import IngestOptions, ingest
from geossl.synth import SYNTH_CLASSES
from tests.conftest import run_cli

FIELD = "landcover"
NAMES = {cid: name for cid, name, *_ in SYNTH_CLASSES}


def _column_type(gpkg, layer, column):
    with sqlite3.connect(gpkg) as db:
        return db.execute(f'SELECT type FROM pragma_table_info("{layer}") WHERE name = ?', (column,)).fetchone()[0]


def _polygons(synth_dir):
    with rasterio.open(synth_dir / "labels.tif") as src:
        data, transform, crs = src.read(1), src.transform, src.crs
    feats = [(shape(g), int(v)) for g, v in shapes(data, mask=data > 0, transform=transform)]
    return data, [g for g, _ in feats], [v for _, v in feats], crs


def _write_labels(src, geoms, values, crs):
    """A GeoPackage as QGIS writes it: strings go to a TEXT column, integers to an INTEGER one."""
    frame = gpd.GeoDataFrame({FIELD: values}, geometry=geoms, crs=crs)
    pyogrio.write_dataframe(frame, src / "labels.gpkg", layer="labels", driver="GPKG")
    manifest = yaml.safe_load((src / "manifest.yaml").read_text())
    manifest["labels"] = {"vectors": ["labels.gpkg"], "class_field": FIELD}
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))


FORMS = {
    "integer ids": (lambda v: v, "INTEGER"),
    "numeric text": (lambda v: f"{v}" if v % 2 else f" {v} ", "TEXT"),
    "class names": (lambda v: NAMES[v].upper() if v % 2 else f" {NAMES[v].lower()}", "TEXT"),
}


@pytest.mark.parametrize("form", FORMS)
def test_class_attribute_as_ids_numeric_text_or_names(synth_dir, tmp_path, form):
    convert, column_type = FORMS[form]
    truth, geoms, ids, crs = _polygons(synth_dir)
    src = tmp_path / "src"
    shutil.copytree(synth_dir, src)
    _write_labels(src, geoms, [convert(v) for v in ids], crs)
    assert _column_type(src / "labels.gpkg", "labels", FIELD) == column_type
    out = tmp_path / "out"
    ingest(src / "manifest.yaml", IngestOptions(out=out, workers=1, quiet=True))
    with rasterio.open(out / load_catalog(out).scenes[0].labels) as lab:
        assert (lab.read(1) == truth).mean() > 0.97


def test_class_values_that_match_no_class_are_refused_in_one_line(synth_dir, tmp_path):
    _, geoms, ids, crs = _polygons(synth_dir)
    values = [NAMES[v] for v in ids]
    values[:3] = ["Hydro", "7", "Road"]
    src, out = tmp_path / "src", tmp_path / "out"
    shutil.copytree(synth_dir, src)
    _write_labels(src, geoms, values, crs)
    assert _column_type(src / "labels.gpkg", "labels", FIELD) == "TEXT"
    result = run_cli("ingest", src / "manifest.yaml", "--out", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "labels.gpkg: attribute 'landcover' has values that match no class: '7', 'Hydro', 'Road'" in lines[0]
    assert "Water" not in lines[0].split("(classes:")[0]
    assert not out.exists()


def test_class_id_of_single_values():
    names, allowed = {"water": 1, "forest": 4}, {0, 1, 4}
    assert [class_id_of(v, names, allowed) for v in (1, np.int16(4), 4.0, " 1 ", "4.0", "0", "FOREST ")] == \
        [1, 4, 4, 1, 4, 0, 4]
    assert [class_id_of(v, names, allowed) for v in (2, 1.5, "2", "Hydro", True, "nan", "")] == [None] * 7
