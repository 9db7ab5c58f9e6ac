"""Scenes as users bring them: named like the training files, in another CRS, at another pixel size."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform, reproject

from geossl.catalog import load_catalog
from geossl.errors import InputError
from geossl.io.cog import Grid
from geossl.models import ModelBundle, described_bands, load_bundle
from geossl.pipeline.config import PredictStep
from geossl.predict.resample import model_grid
from geossl.predict.run import PredictOptions, predict_with
from geossl.predict.runner import ModuleModel
from geossl.predict.scene import open_scenes
from geossl.synth import SynthConfig, write_scene
from geossl.train.config import TrainConfig
from geossl.train.run import make_bundle as train_bundle
from tests.conftest import ZION, run_cli
from tests.predict_support import SignatureClassifier, make_bundle, read, save_checkpoint

SOURCE_NAMES = ["B2_blue", "B3_green", "B4_red", "B5_nir"]
RES = 30.0
#: 200 km west of the zone's central meridian: north in EPSG:4326 is ~2° off grid north, a real reprojection.
#: Half a pixel off multiples of 30 m, as Landsat's grid: outputs must land on the training lattice, not on those.
ORIGIN = (300015.0, 5100015.0)


def _write(path: Path, data: np.ndarray, crs: str, transform, descriptions, nodata: float | None = 0) -> Path:
    profile = {"driver": "GTiff", "dtype": data.dtype.name, "count": data.shape[0], "height": data.shape[1],
               "width": data.shape[2], "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = tuple(descriptions)
    return path


def _renamed(src: Path, dst: Path, names: list[str]) -> Path:
    with rasterio.open(src) as s:
        return _write(dst, s.read(), s.crs, s.transform, names, s.nodata)


def _refused(*args) -> str:
    result = run_cli("predict", *args, "--scheduler", "synchronous")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- band names: the manifest's or the training files' own --------------------------------------------------


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    """A scene named like the manifest, the same scene named like its source files, a checkpoint knowing both."""
    base = tmp_path_factory.mktemp("named")
    scene = write_scene(base / "synth", SynthConfig(size=96, tile=96, seed=3, border=False))["image"]
    bundle = make_bundle().model_copy(update={"source_bands": [SOURCE_NAMES]})
    return scene, _renamed(scene, base / "source.tif", SOURCE_NAMES), save_checkpoint(base / "model.pt", bundle)


@pytest.mark.parametrize("which", ["manifest", "source"])
def test_scene_named_like_the_manifest_or_the_source_files_is_accepted(named, which, tmp_path):
    manifest_named, source_named, ckpt = named
    scene = manifest_named if which == "manifest" else source_named
    result = run_cli("predict", ckpt, scene, "--out", tmp_path / "out", "--scheduler", "synchronous")
    assert result.exit_code == 0, result.output
    assert (read(tmp_path / "out" / f"{scene.stem}_classes.tif") > 0).all()
    item = json.loads((tmp_path / "out" / f"{scene.stem}.json").read_text())
    assert item["properties"]["geossl:model"]["source_bands"] == [SOURCE_NAMES]


@pytest.mark.parametrize(("names", "message"), [
    (["B1", "B2", "B3", "B4"], "bands B1, B2, B3, B4 differ from the checkpoint's blue, green, red, nir or "
                               "B2_blue, B3_green, B4_red, B5_nir (--ignore-band-names trusts the order)"),
    (["B3_green", "B2_blue", "B4_red", "B5_nir"], "band order B3_green, B2_blue, B4_red, B5_nir differs from the "
                                                  "checkpoint's B2_blue, B3_green, B4_red, B5_nir"),
    (["green", "blue", "red", "nir"], "band order green, blue, red, nir differs from the checkpoint's "
                                      "blue, green, red, nir"),
    (["blue", "B3_green", "B4_red", "B5_nir"], "bands blue, B3_green, B4_red, B5_nir differ"),
])
def test_other_band_names_or_order_are_refused(named, names, message, tmp_path):
    scene, _, ckpt = named
    bad = _renamed(scene, tmp_path / "bad.tif", names)
    line = _refused(ckpt, bad, "--out", tmp_path / "out")
    assert line.endswith(f"bad.tif: {message}") or f"bad.tif: {message}" in line, line
    assert not (tmp_path / "out").exists()


def test_bundle_written_before_source_bands_loads_and_checks_manifest_names(named, tmp_path):
    scene, source_named, _ = named
    bundle = make_bundle()
    payload = {"geossl": {k: v for k, v in bundle.model_dump(mode="json").items() if k != "source_bands"},
               "state_dict": torch.load(named[2], weights_only=True)["state_dict"]}
    torch.save(payload, tmp_path / "old.pt")
    loaded, _ = load_bundle(tmp_path / "old.pt")
    assert loaded.source_bands == []
    assert len(open_scenes([scene], loaded)) == 1
    with pytest.raises(InputError, match="bands B2_blue, B3_green, B4_red, B5_nir differ from the checkpoint's "
                                         "blue, green, red, nir \\("):
        open_scenes([source_named], loaded)


def test_described_bands_keeps_fully_named_distinct_namings(named, tmp_path):
    manifest_named, source_named, _ = named
    partial = _renamed(manifest_named, tmp_path / "partial.tif", ["B2_blue", "", "B4_red", "B5_nir"])
    found = described_bands([source_named, partial, tmp_path / "moved_away.tif", source_named, manifest_named])
    assert found == [SOURCE_NAMES, ["blue", "green", "red", "nir"]]


def test_train_records_the_catalog_sources_band_descriptions(synth_catalog, tmp_path):
    """The issue's case: trained with the manifest's names, the model accepts its own source file."""
    catalog = load_catalog(synth_catalog)
    source = _renamed(Path(catalog.scenes[0].source), tmp_path / "landsat.tif", SOURCE_NAMES)
    catalog = catalog.model_copy(update={"scenes": [catalog.scenes[0].model_copy(update={"source": str(source)})]})
    bundle = train_bundle(TrainConfig(encoder="tu-resnet10t", patch_size=64), catalog)
    assert bundle.bands == ["blue", "green", "red", "nir"] and bundle.source_bands == [SOURCE_NAMES]
    assert bundle.grid_origin == [catalog.scenes[0].transform[2], catalog.scenes[0].transform[5]]
    (scene,) = open_scenes([source], ModelBundle.model_validate(bundle.model_dump(mode="json")))
    assert scene.count == 4


def test_zion_scene_matches_a_bundle_trained_with_the_zion_manifest(zion_root):
    """The real Landsat file names its bands B2_blue..B5_nir; data_manifests/zion.yaml names them blue..nir."""
    path = ZION / "landsat8_zion_20150818_B2B3B4B5.tif"
    bundle = make_bundle().model_copy(update={"crs": "EPSG:32612", "resolution": [30.0, 30.0],
                                              "source_bands": described_bands([path])})
    assert bundle.source_bands == [SOURCE_NAMES]
    (scene,) = open_scenes([path], bundle)
    assert scene.warp is None and (scene.height, scene.width) == (1428, 1128)
    with pytest.raises(InputError, match="differ from the checkpoint's blue, green, red, nir \\("):
        open_scenes([path], make_bundle())


# --- another CRS or pixel size: --resample ------------------------------------------------------------------


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """The same land at the model's grid (30 m, EPSG:32633), at 10 m, and exported to EPSG:4326 at ~30 m."""
    base = tmp_path_factory.mktemp("grids")
    native = write_scene(base / "synth", SynthConfig(size=192, tile=192, seed=5, resolution=RES,
                                                     origin=ORIGIN))["image"]
    with rasterio.open(native) as src:
        data, crs, transform, names = src.read(), src.crs, src.transform, src.descriptions
    fine = _write(base / "fine10m.tif", np.repeat(np.repeat(data, 3, axis=1), 3, axis=2), crs,
                  from_origin(*ORIGIN, 10.0, 10.0), names)
    dst_t, w, h = calculate_default_transform(crs, "EPSG:4326", data.shape[2], data.shape[1],
                                              *Grid(crs, transform, data.shape[2], data.shape[1]).bounds)
    geo = np.zeros((4, h, w), dtype=data.dtype)
    reproject(data, geo, src_transform=transform, src_crs=crs, src_nodata=0, dst_transform=dst_t,
              dst_crs="EPSG:4326", dst_nodata=0, resampling=Resampling.nearest)
    lonlat = _write(base / "lonlat.tif", geo, "EPSG:4326", dst_t, names)
    return native, fine, lonlat


def _bundle() -> ModelBundle:
    return make_bundle().model_copy(update={"resolution": [RES, RES], "crs": "EPSG:32633",
                                            "grid_origin": list(ORIGIN)})


def _predict(scene: Path, out: Path, resample: bool, bundle: ModelBundle | None = None) -> dict:
    bundle = bundle or _bundle()
    (item,) = predict_with(bundle, ModuleModel(SignatureClassifier(bundle).eval()), [scene],
                           PredictOptions(out=out, scheduler="synchronous", resample=resample, quiet=True))
    return item


@pytest.fixture(scope="module")
def native_prediction(scenes, tmp_path_factory) -> tuple[np.ndarray, Grid]:
    out = tmp_path_factory.mktemp("native")
    _predict(scenes[0], out, resample=False)
    with rasterio.open(out / "scene_classes.tif") as src:
        return src.read(1), Grid.of(src)


def _on_grid(path: Path, grid: Grid) -> np.ndarray:
    """The part of raster ``path`` (same CRS and pixel size, offset by whole pixels) covering ``grid``."""
    with rasterio.open(path) as src:
        col, row = ~src.transform @ (grid.transform.c, grid.transform.f)
        assert abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
        window = rasterio.windows.Window(round(col), round(row), grid.width, grid.height)
        return src.read(1, window=window, boundless=True, fill_value=0)


def test_finer_scene_resampled_onto_the_model_grid(scenes, native_prediction, tmp_path, caplog):
    native, grid = native_prediction
    with caplog.at_level(logging.INFO, logger="geossl.predict.scene"):
        item = _predict(scenes[1], tmp_path / "out", resample=True)
    assert "pixel size 10 x 10 differs from the model's 30 x 30" in caplog.text
    with rasterio.open(tmp_path / "out" / "fine10m_classes.tif") as out:
        assert Grid.of(out).same_as(grid)  # 3 x 3 pixels averaged back onto exactly the 30 m grid
        classes = out.read(1)
    assert (classes == native).mean() > 0.999
    props = item["properties"]
    assert props["proj:shape"] == [192, 192] and props["proj:transform"][0] == RES
    assert props["geossl:resampled_from"]["proj:shape"] == [576, 576]
    assert props["geossl:resampled_from"]["proj:transform"][0] == 10.0
    assert props["geossl:resampled_from"]["resampling"] == "average"


def _masked(src: Path, dst: Path) -> Path:
    """``src`` with its nodata pixels marked by an internal mask instead of a nodata value."""
    with rasterio.open(src) as s:
        profile, data, names = s.profile, s.read(), s.descriptions
    profile.pop("nodata")
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(dst, "w", **profile) as d:
        d.write(data)
        d.descriptions = names
        d.write_mask(np.where((data != 0).all(axis=0), 255, 0).astype("uint8"))
    return dst


@pytest.mark.parametrize("marking", ["nodata", "mask"])
def test_lonlat_scene_resampled_onto_the_model_crs_and_pixel_size(scenes, native_prediction, marking, tmp_path):
    native, grid = native_prediction
    scene, bundle = scenes[2], _bundle()
    if marking == "mask":  # no nodata value anywhere: only the mask (and the warp's alpha) tell what is outside
        scene, bundle = _masked(scene, tmp_path / "lonlat.tif"), bundle.model_copy(update={"nodata": None})
    item = _predict(scene, tmp_path / "out", resample=True, bundle=bundle)
    path = tmp_path / "out" / "lonlat_classes.tif"
    with rasterio.open(path) as out:
        assert out.crs.to_epsg() == 32633 and out.res == (RES, RES)
        t = out.transform
        assert (t.c - ORIGIN[0]) % RES == 0 and (t.f - ORIGIN[1]) % RES == 0  # on the training lattice
        with rasterio.open(scenes[2]) as src:  # and covering the exported scene
            lonlat_bounds = rasterio.warp.transform_bounds(src.crs, out.crs, *src.bounds)
        left, bottom, right, top = out.bounds
        assert left <= lonlat_bounds[0] < left + RES and right - RES < lonlat_bounds[2] <= right
        assert bottom <= lonlat_bounds[1] < bottom + RES and top - RES < lonlat_bounds[3] <= top
        classes = out.read(1)
    on_native = _on_grid(path, grid)
    both = (native > 0) & (on_native > 0)
    # nodata stays nodata: the tilted footprint of the synthetic scene, and all the area beyond the export
    assert both.sum() > 0.95 * (native > 0).sum()
    assert (classes > 0).sum() - (on_native > 0).sum() < 0.01 * (native > 0).sum()
    # two resamplings (to lon/lat and back) move class edges by a pixel, not the classes
    assert (on_native[both] == native[both]).mean() > 0.95
    assert item["properties"]["geossl:resampled_from"]["proj:code"] == "EPSG:4326"


def test_without_resample_a_warning_names_the_option(scenes, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="geossl.predict.scene"):
        item = _predict(scenes[2], tmp_path / "out", resample=False)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "lonlat.tif: CRS EPSG:4326 differs from the model's EPSG:32633" in warning
    assert "--resample" in warning and "\n" not in warning
    with rasterio.open(tmp_path / "out" / "lonlat_classes.tif") as out, rasterio.open(scenes[2]) as src:
        assert Grid.of(out) == Grid.of(src)  # predicted as before, on the scene's own grid
    assert item["properties"]["geossl:resampled_from"] is None


def test_cli_resample_on_the_dask_scheduler(scenes, tmp_path):
    """The flag through the CLI, and a warped scene travelling to a Dask worker."""
    ckpt = save_checkpoint(tmp_path / "model.pt", _bundle())
    result = run_cli("predict", ckpt, scenes[1], "--out", tmp_path / "out", "--resample", "--probabilities")
    assert result.exit_code == 0, result.output
    for kind in ("classes", "confidence", "probabilities"):
        with rasterio.open(tmp_path / "out" / f"fine10m_{kind}.tif") as out:
            assert out.crs.to_epsg() == 32633 and out.shape == (192, 192)
            assert out.transform == from_origin(*ORIGIN, RES, RES)


def test_resample_needs_the_model_pixel_size(scenes, tmp_path):
    ckpt = save_checkpoint(tmp_path / "model.pt", make_bundle())  # records a CRS, no pixel size
    line = _refused(ckpt, scenes[2], "--out", tmp_path / "out", "--resample")
    assert line.endswith("lonlat.tif: cannot resample: the checkpoint does not record the pixel size it was "
                         "trained at"), line


def test_model_grid_lattice():
    """Pixel edges on the checkpoint's lattice, else on multiples of the pixel size; the scene always covered."""
    scene = Grid(CRS.from_epsg(32633), from_origin(300007.0, 5100004.0, 10.0, 10.0), 50, 40)
    on_lattice = model_grid(Path("s.tif"), scene, _bundle())
    assert on_lattice.transform == from_origin(299985.0, 5100015.0, RES, RES)
    assert (on_lattice.width, on_lattice.height) == (18, 14)  # 299985 + 18 * 30 >= 300507, 5100015 - 14 * 30 <= 5099604
    plain = model_grid(Path("s.tif"), scene, _bundle().model_copy(update={"grid_origin": []}))
    assert plain.transform == from_origin(300000.0, 5100030.0, RES, RES) and (plain.width, plain.height) == (17, 15)


def test_pipeline_predict_step_takes_resample():
    assert PredictStep.model_validate({"resample": True}).resample
    assert not PredictStep().resample
