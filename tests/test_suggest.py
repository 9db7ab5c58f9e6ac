"""``geossl suggest`` on the synthetic scene: where the windows go, how they are ranked, what is written."""

from __future__ import annotations

import sqlite3
from itertools import accumulate
from pathlib import Path
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import yaml
from click.testing import CliRunner

from geossl.catalog import load_catalog
from geossl.cli import main
from geossl.data.regions import split_regions
from geossl.io.layers import LABEL_LAYER, LayerSource, layer_digest
from geossl.manifest import load_manifest
from tests.conftest import ROOT, run_cli
from tests.test_progress import progress_lines

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = {"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8], "patch_size": 64, "batch_size": 2,
        "steps_per_epoch": 4, "threads": 1}
SIZE = 32


@pytest.fixture(scope="module")
def model(synth_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for 4 steps on the synthetic catalog."""
    folder = tmp_path_factory.mktemp("suggest_model")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", folder / "run", "--config", config,
                     "--max-steps", "4")
    assert result.exit_code == 0, result.output
    return folder / "run" / "model.pt"


def _suggest(model: Path, catalog: Path, out: Path, *extra: str):
    return run_cli("suggest", model, MANIFEST, "--catalog", catalog, "--out", out, "--size", SIZE, "--threads", 1,
                   *extra)


def _read(path: Path):
    return pyogrio.read_dataframe(path, layer=path.stem)


def _areas(catalog: Path) -> tuple[shapely.Geometry, shapely.Geometry]:
    regions = split_regions(load_catalog(catalog))
    return (shapely.union_all([r.geometry for r in regions if r.split == "unlabeled"]),
            shapely.union_all([r.geometry for r in regions if r.split != "unlabeled"]))


def test_suggestions_avoid_the_labeled_area_and_are_ranked_by_their_score(model, synth_catalog, tmp_path):
    out = tmp_path / "next.gpkg"
    result = _suggest(model, synth_catalog, out, "--n", "8")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    frame = _read(out)
    assert list(frame["rank"]) == list(range(1, 9))
    scores = frame["score"].to_numpy()
    assert np.all(np.diff(scores) <= 0) and scores[0] > 0
    assert np.all(scores <= frame["uncertainty"].to_numpy() + 1e-12)  # the diversity factor is at most 1
    unlabeled, others = _areas(synth_catalog)
    res = load_catalog(synth_catalog).resolution[0]
    geoms = frame.geometry.to_numpy()
    assert np.allclose(shapely.area(geoms), (SIZE * res) ** 2)
    assert shapely.covers(unlabeled, geoms).all()
    assert np.all(shapely.area(shapely.intersection(geoms, others)) == 0)
    for i in range(len(geoms)):  # never two windows over the same pixels
        assert np.all(shapely.area(shapely.intersection(geoms[i], np.delete(geoms, i))) == 0)
    shares = frame[[c for c in frame.columns if c.startswith("share_")]].to_numpy()
    assert len(shares[0]) == 6 and np.allclose(shares.sum(axis=1), 1.0)
    names = [c.name for c in load_catalog(synth_catalog).classes]
    assert list(frame["dominant"]) == [names[k] for k in shares.argmax(axis=1)]
    assert frame.crs == rasterio.crs.CRS.from_wkt(load_catalog(synth_catalog).crs)


def test_the_first_window_is_the_most_uncertain_one_predict_sees(model, synth_catalog, tmp_path):
    """Checked against ``geossl predict --probabilities``: mean entropy of every window, recomputed here."""
    out = tmp_path / "plain.gpkg"
    assert _suggest(model, synth_catalog, out, "--n", "3", "--method", "entropy", "--diversity", "none").exit_code == 0
    frame = _read(out)
    assert np.allclose(frame["score"], frame["uncertainty"])
    image = synth_catalog / load_catalog(synth_catalog).scenes[0].image
    assert run_cli("predict", model, image, "--out", tmp_path / "pred", "--probabilities",
                   "--scheduler", "synchronous").exit_code == 0
    with rasterio.open(tmp_path / "pred" / f"{image.stem}_probabilities.tif") as src:
        coded, transform = src.read(), src.transform
    valid = (coded != 255).all(axis=0)
    p = coded.astype(np.float64) / 254
    p /= np.maximum(p.sum(axis=0), 1e-9)
    entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=0) / np.log(len(p))
    unlabeled, others = _areas(synth_catalog)
    best, best_row = -1.0, None
    for r in range(0, valid.shape[0] - SIZE + 1, SIZE // 2):  # the unlabeled area spans the scene: grid from 0
        for c in range(0, valid.shape[1] - SIZE + 1, SIZE // 2):
            if not valid[r : r + SIZE, c : c + SIZE].all():
                continue
            x0, y1 = transform @ (c, r)
            x1, y0 = transform @ (c + SIZE, r + SIZE)
            window = shapely.box(x0, y0, x1, y1)
            if shapely.covers(unlabeled, window) and shapely.intersection(window, others).area == 0:
                u = entropy[r : r + SIZE, c : c + SIZE].mean()
                if u > best:
                    best, best_row = u, (r, c)
    first = frame.iloc[0]
    r, c = int(first["row"]), int(first["col"])
    assert first["uncertainty"] == pytest.approx(entropy[r : r + SIZE, c : c + SIZE].mean(), abs=0.01)
    assert first["uncertainty"] == pytest.approx(best, abs=0.01), (best_row, (r, c))


def test_typical_windows_lie_in_the_unlabeled_area_and_carry_their_group_share(model, synth_catalog, tmp_path):
    out = tmp_path / "typical.gpkg"
    result = _suggest(model, synth_catalog, out, "--n", "4", "--ranking", "typical")
    assert result.exit_code == 0, result.output
    frame = _read(out)
    assert list(frame["rank"]) == [1, 2, 3, 4]
    scores = frame["score"].to_numpy()
    assert np.all(np.diff(scores) <= 0) and 0 < scores[0] <= 1 and scores.sum() <= 1
    unlabeled, others = _areas(synth_catalog)
    geoms = frame.geometry.to_numpy()
    assert shapely.covers(unlabeled, geoms).all()
    assert np.all(shapely.area(shapely.intersection(geoms, others)) == 0)
    for i in range(len(geoms)):
        assert np.all(shapely.area(shapely.intersection(geoms[i], np.delete(geoms, i))) == 0)


def test_the_layer_carries_a_rank_style_and_a_sidecar(model, synth_catalog, tmp_path):
    out = tmp_path / "styled.gpkg"
    assert _suggest(model, synth_catalog, out, "--n", "3", "--method", "margin", "--tta",
                    "--diversity", "classes", "--class-weighting", "balanced").exit_code == 0
    with sqlite3.connect(out) as db:
        rows = db.execute("SELECT f_table_name, useAsDefault, styleQML FROM layer_styles WHERE f_table_name != ?",
                          (LABEL_LAYER,)).fetchall()
    assert len(rows) == 1 and rows[0][0] == "styled" and rows[0][1]
    qml = rows[0][2]
    assert 'type="graduatedSymbol" attr="rank"' in qml and 'fieldName="rank"' in qml and 'labelsEnabled="1"' in qml
    root = ElementTree.fromstring(qml)
    ranges = root.findall("./renderer-v2/ranges/range")
    assert [(float(r.get("lower")), float(r.get("upper"))) for r in ranges] == [(0.5, 1.5), (1.5, 2.5), (2.5, 3.5)]
    assert len(root.findall("./renderer-v2/symbols/symbol")) == 3
    assert out.with_suffix(".qml").read_text() == qml
    frame = _read(out)
    assert (frame["uncertainty"] >= 0).all() and (frame["uncertainty"] <= 1).all()


def test_the_file_holds_an_empty_layer_to_draw_labels_in_with_a_class_drop_down(model, synth_catalog, tmp_path):
    out = tmp_path / "round1.gpkg"
    assert _suggest(model, synth_catalog, out, "--n", "2").exit_code == 0
    assert [list(row) for row in pyogrio.list_layers(out)] == [["round1", "Polygon"], [LABEL_LAYER, "MultiPolygon"],
                                                             ["layer_styles", None]]
    info = pyogrio.read_info(out, layer=LABEL_LAYER)
    assert info["features"] == 0 and list(info["fields"]) == ["class"] and list(info["dtypes"]) == ["int32"]
    assert info["crs"] == pyogrio.read_info(out, layer="round1")["crs"]
    with sqlite3.connect(out) as db:
        (qml, default), = db.execute("SELECT styleQML, useAsDefault FROM layer_styles WHERE f_table_name = ?",
                                     (LABEL_LAYER,)).fetchall()
    root = ElementTree.fromstring(qml)
    widget = root.find("./fieldConfiguration/field[@name='class']/editWidget")
    assert default and widget is not None and widget.get("type") == "ValueMap"
    entries = [option.attrib for option in widget.findall("./config/Option/Option[@name='map']/Option/Option")]
    classes = load_manifest(MANIFEST).classes
    assert [(e["name"], e["value"]) for e in entries] == [(c.name, str(c.id)) for c in classes]
    assert root.find("./constraints/constraint[@field='class']").get("constraints") == "1"  # not null
    assert [c.get("value") for c in root.findall("./renderer-v2/categories/category")] == [
        *[str(c.id) for c in classes], ""]


def test_an_existing_output_needs_overwrite_which_keeps_the_polygons_drawn_in_it(model, synth_catalog, tmp_path):
    out = tmp_path / "again.gpkg"
    assert _suggest(model, synth_catalog, out, "--n", "2").exit_code == 0
    drawn = gpd.GeoDataFrame({"class": [6, 1]}, crs="EPSG:32633", geometry=[
        shapely.MultiPolygon([shapely.box(501400, 5099000, 501800, 5099400)]),
        shapely.MultiPolygon([shapely.box(501900, 5099000, 502000, 5099100)])])
    pyogrio.write_dataframe(drawn, out, layer=LABEL_LAYER, append=True)
    with sqlite3.connect(out) as db:  # an analyst deleted the first: the others keep their feature ids
        db.execute(f"DELETE FROM {LABEL_LAYER} WHERE fid = 1")
    before, digest = out.read_bytes(), layer_digest(LayerSource(out))
    result = _suggest(model, synth_catalog, out, "--n", "2")
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert out.read_bytes() == before
    assert _suggest(model, synth_catalog, out, "--n", "3", "--overwrite").exit_code == 0
    assert len(_read(out)) == 3
    kept = pyogrio.read_dataframe(out, layer=LABEL_LAYER, fid_as_index=True)
    assert list(kept.index) == [2] and list(kept["class"]) == [1] and kept.geometry[2].equals(drawn.geometry[1])
    assert layer_digest(LayerSource(out)) == digest  # so ingest sees the drawn labels unchanged


def test_the_file_may_not_be_named_like_the_label_layer(model, synth_catalog, tmp_path):
    result = _suggest(model, synth_catalog, tmp_path / f"{LABEL_LAYER}.gpkg")
    assert result.exit_code == 2 and result.stderr.startswith("Error: --out: the windows' layer is named after")
    assert not list(tmp_path.iterdir())


def test_a_pipeline_suggests_after_training_and_reports_it(model, synth_dir, tmp_path):
    import json

    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump({
        "name": "t", "manifest": str(MANIFEST), "data_root": str(synth_dir),
        "steps": {"train": {"checkpoint": str(model)}, "suggest": {"n": 4, "size": SIZE, "threads": 1},
                  "predict": {"batch_size": 4}, "report": {"quicklook_size": 256}}}))
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(main, ["-q", "--progress", "run", str(pipeline), "--run-dir", str(run_dir)])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr)  # each step its fifth of the whole, in order, and its bars inside it
    steps = {"ingest", "train", "suggest", "predict", "report", "done"}
    assert [line for line in lines if line[1] in steps] == [
        (0.0, "ingest"), (20.0, "train"), (40.0, "suggest"), (60.0, "predict"), (80.0, "report"), (100.0, "done")]
    starts = [percent if what in steps else None for percent, what in lines]
    for (percent, _), start in zip(lines, accumulate(starts, lambda a, b: a if b is None else b), strict=True):
        assert start <= percent <= start + 20
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary["steps"]) == ["ingest", "train", "suggest", "predict", "report"]
    assert summary["steps"]["suggest"]["status"] == "done"
    gpkg = run_dir / "suggest" / "suggestions.gpkg"
    assert len(_read(gpkg)) == 4 and gpkg.with_suffix(".qml").is_file()
    html = (run_dir / "report" / "report.html").read_text()
    section = html[html.index("<h2>Where to label next</h2>"):]
    assert section.count("data:image/png;base64,", 0, section.index("<table>")) == 1  # the map over the RGB
    table = section[section.index("<table>"):section.index("</table>")]
    assert table.count("<tr>") == 5 and "../suggest/suggestions.gpkg" in html
    assert run_cli("run", pipeline, "--run-dir", run_dir).exit_code == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"]["suggest"]["status"] == "skipped"
