"""`geossl predict` end to end: grids, nodata, blending, edges, tiny scenes, styles, metadata, Dask."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from geossl.io.cog import Grid
from geossl.models import Segmenter
from geossl.predict.run import PredictOptions, predict_with
from geossl.predict.runner import ModuleModel, available_cores
from tests.conftest import run_cli
from tests.predict_support import (
    THREADS_SEEN,
    CountingModel,
    SignatureClassifier,
    ThreadRecorder,
    classes,
    crop_scene,
    make_bundle,
    make_scene,
    read,
    save_checkpoint,
)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    """320 x 320 (two COG tiles a side, so overviews), nodata outside a tilted footprint."""
    return make_scene(tmp_path_factory.mktemp("scene"), size=320)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", make_bundle())


@pytest.fixture(scope="module")
def predicted(scene, checkpoint, tmp_path_factory) -> Path:
    """One CLI run (default Dask cluster) with probabilities."""
    out = tmp_path_factory.mktemp("pred") / "out"
    result = run_cli("predict", checkpoint, scene, "--out", out, "--probabilities")
    assert result.exit_code == 0, result.output
    return out


def _valid(scene: Path) -> np.ndarray:
    return (read(scene) != 0).all(axis=0)


def test_outputs_on_the_source_grid_as_cogs(scene, predicted):
    with rasterio.open(scene) as src:
        grid = Grid.of(src)
    for name in ("classes", "confidence", "probabilities"):
        with rasterio.open(predicted / f"scene_{name}.tif") as out:
            assert Grid.of(out) == grid
            assert out.crs == grid.crs and out.transform == grid.transform and out.shape == (320, 320)
            assert out.profile["tiled"] and out.block_shapes[0] == (256, 256)
            assert out.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    with rasterio.open(predicted / "scene_classes.tif") as out:
        assert out.dtypes[0] == "uint8" and out.nodata == 0
    assert sorted(p.name for p in predicted.iterdir()) == [
        "scene.json", "scene_classes.qml", "scene_classes.tif", "scene_confidence.tif", "scene_probabilities.tif"]


def test_nodata_in_every_output(scene, predicted):
    valid = _valid(scene)
    assert 0.8 < valid.mean() < 1.0  # the synthetic footprint leaves a nodata border
    cls = read(predicted / "scene_classes.tif")[0]
    conf = read(predicted / "scene_confidence.tif")[0]
    prob = read(predicted / "scene_probabilities.tif")
    assert (cls[~valid] == 0).all() and (cls[valid] > 0).all()
    assert set(np.unique(cls[valid])) <= {c.id for c in classes()}
    assert (conf[~valid] == 0).all() and (conf[valid] >= 1).all()
    assert (prob[:, ~valid] == 255).all() and (prob[:, valid] <= 254).all()
    # probabilities (x 254) add up to 1 up to rounding; confidence is the top one (x 255)
    total = prob[:, valid].astype(int).sum(axis=0)
    assert np.abs(total - 254).max() <= 6
    assert np.abs(prob[:, valid].max(axis=0) / 254 - conf[valid] / 255).max() < 0.01


def test_palette_and_class_names(predicted):
    with rasterio.open(predicted / "scene_classes.tif") as out:
        cmap = out.colormap(1)
        tags = out.tags(1)
        assert out.descriptions == ("class",)
        assert out.overviews(1) == [2]
    for c in classes():
        assert cmap[c.id][:3] == c.rgb and cmap[c.id][3] == 255
    assert cmap[0][3] == 0  # nodata transparent
    assert json.loads(tags["classes"]) == [c.model_dump() for c in classes()]
    with rasterio.open(predicted / "scene_probabilities.tif") as out:
        assert out.descriptions == tuple(c.name for c in classes())
        assert out.scales[0] == pytest.approx(1 / 254)


def test_qml_parses_and_lists_every_class(predicted):
    root = ET.parse(predicted / "scene_classes.qml").getroot()
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted"
    entries = renderer.findall("colorPalette/paletteEntry")
    assert [(int(e.get("value")), e.get("label"), e.get("color")) for e in entries] == [
        (c.id, c.name, c.color) for c in classes()]


def test_metadata_item(predicted, checkpoint):
    item = json.loads((predicted / "scene.json").read_text())
    props = item["properties"]
    assert item["type"] == "Feature" and item["id"] == "scene"
    assert [c["name"] for c in props["classification:classes"]] == [c.name for c in classes()]
    assert props["geossl:model"]["checkpoint"] == str(checkpoint.absolute())
    assert len(props["geossl:model"]["sha256"]) == 64
    assert props["proj:shape"] == [320, 320] and props["geossl:source"].endswith("scene.tif")
    assert props["geossl:prediction"]["patch_size"] == 64 and props["geossl:prediction"]["overlap"] == 16
    assert props["geossl:prediction"]["windows"] == 49  # starts 0, 48, ..., 240, 256 on both axes
    assert sum(props["geossl:class_pixels"].values()) == int((read(predicted / "scene_classes.tif") > 0).sum())
    for asset in item["assets"].values():
        assert (predicted / asset["href"]).is_file()
    lon, lat = item["geometry"]["coordinates"][0][0]
    assert 14 < lon < 16 and 45 < lat < 47  # EPSG:32633 near 500000 E, 5100000 N


def _one_pass(model: torch.nn.Module, bundle, image: np.ndarray) -> np.ndarray:
    x, _ = bundle.normalize(image)
    with torch.inference_mode():
        return model(torch.from_numpy(x)[None])[0].argmax(0).numpy()


def test_windowed_equals_one_pass(scene, tmp_path):
    """Windows of 64 px overlapping by 16, blended, against the whole scene in one forward pass."""
    bundle = make_bundle(patch_size=64, overlap=16)
    model = SignatureClassifier(bundle).eval()
    predict_with(bundle, ModuleModel(model), [scene], PredictOptions(out=tmp_path / "out", scheduler="synchronous",
                                                                     quiet=True))
    windowed = read(tmp_path / "out" / "scene_classes.tif")[0]
    valid = _valid(scene)
    ids = np.array([c.id for c in classes()])
    one_pass = ids[_one_pass(model, bundle, read(scene))]
    # the comparison means something only if the map is not one class
    shares = np.bincount(one_pass[valid], minlength=7) / valid.sum()
    assert (shares > 0.05).sum() >= 3, shares
    agreement = (windowed[valid] == one_pass[valid]).mean()
    assert agreement >= 0.995, agreement
    # and the classifier finds the synthetic classes, so the windows are put back where they belong
    labels = read(scene.parent / "labels.tif")[0]
    assert (windowed[valid] == labels[valid]).mean() > 0.8


def test_edges_reached_and_scene_not_a_multiple_of_the_stride(scene, tmp_path):
    src = crop_scene(make_scene(tmp_path / "full", size=256, border=False), tmp_path / "edge.tif", 203, 151)
    bundle = make_bundle(patch_size=64, overlap=16)
    model = SignatureClassifier(bundle).eval()
    predict_with(bundle, ModuleModel(model), [src], PredictOptions(out=tmp_path / "out", scheduler="synchronous",
                                                                   quiet=True))
    out = read(tmp_path / "out" / "edge_classes.tif")[0]
    conf = read(tmp_path / "out" / "edge_confidence.tif")[0]
    assert out.shape == (203, 151)
    assert (out > 0).all() and (conf > 0).all()  # every pixel, the last row and column included
    ids = np.array([c.id for c in classes()])
    one_pass = ids[_one_pass(model, bundle, read(src))]
    for edge in (out[-1] == one_pass[-1], out[:, -1] == one_pass[:, -1], out[0] == one_pass[0]):
        assert edge.mean() >= 0.99


def test_tiny_scene_smaller_than_one_window(checkpoint, tmp_path):
    src = crop_scene(make_scene(tmp_path / "full", size=128, border=False), tmp_path / "tiny.tif", 37, 50)
    result = run_cli("predict", checkpoint, src, "--out", tmp_path / "out", "--scheduler", "synchronous")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "out" / "tiny_classes.tif") as out:
        assert out.shape == (37, 50)
        data = out.read(1)
    assert (data > 0).all()
    item = json.loads((tmp_path / "out" / "tiny.json").read_text())
    assert item["properties"]["geossl:prediction"]["windows_run"] == 1


def test_all_nodata_windows_are_skipped(tmp_path):
    src_full = make_scene(tmp_path / "full", size=256, border=False)
    with rasterio.open(src_full) as s:
        profile, data, desc = s.profile, s.read(), s.descriptions
    data[:, :, :120] = 0  # the left 120 columns are nodata: window columns at 0 and 48 hold no valid pixel
    with rasterio.open(tmp_path / "half.tif", "w", **profile) as d:
        d.write(data)
        d.descriptions = desc
    bundle = make_bundle(patch_size=64, overlap=16)
    model = CountingModel(SignatureClassifier(bundle)).eval()
    items = predict_with(bundle, ModuleModel(model), [tmp_path / "half.tif"],
                         PredictOptions(out=tmp_path / "out", scheduler="synchronous", quiet=True))
    pred = items[0]["properties"]["geossl:prediction"]
    assert pred["windows"] == 25 and pred["windows_skipped_nodata"] == 10 and pred["windows_run"] == 15
    assert model.windows == 15
    out = read(tmp_path / "out" / "half_classes.tif")[0]
    assert (out[:, :120] == 0).all() and (out[:, 120:] > 0).all()


def test_dask_blocks_and_scenes_identical_to_single_process(scene, checkpoint, tmp_path):
    other = make_scene(tmp_path / "other", size=256, seed=11)
    (tmp_path / "other" / "scene.tif").rename(tmp_path / "other" / "second.tif")
    other = tmp_path / "other" / "second.tif"
    here = tmp_path / "here"
    for src in (scene, other):
        r = run_cli("predict", checkpoint, src, "--out", here, "--scheduler", "synchronous", "--block-width", "256",
                    "--probabilities")
        assert r.exit_code == 0, r.output
    fanned = tmp_path / "dask"
    r = run_cli("predict", checkpoint, scene, other, "--out", fanned, "--workers", "2", "--block-width", "256",
                "--probabilities")
    assert r.exit_code == 0, r.output
    item = json.loads((fanned / "scene.json").read_text())
    assert item["properties"]["geossl:prediction"]["blocks"] == 2
    for name in ("scene", "second"):
        for kind in ("classes", "confidence", "probabilities"):
            a, b = read(here / f"{name}_{kind}.tif"), read(fanned / f"{name}_{kind}.tif")
            assert np.array_equal(a, b), f"{name}_{kind} differs"
    # and blocks do not change the blend: one block gives the same map (up to float rounding of batches)
    one = tmp_path / "one"
    r = run_cli("predict", checkpoint, scene, "--out", one, "--scheduler", "synchronous")
    assert r.exit_code == 0, r.output
    conf_one, conf_blocks = read(one / "scene_confidence.tif"), read(here / "scene_confidence.tif")
    assert np.abs(conf_one.astype(int) - conf_blocks).max() <= 1
    assert (read(one / "scene_classes.tif") == read(here / "scene_classes.tif")).mean() > 0.999


@pytest.mark.parametrize("threads", [None, 3])
def test_the_models_threads_follow_the_options_never_the_scheduler(scene, tmp_path, threads):
    """Float sums round by the thread count, so it must be the same for every scheduler and number of workers."""
    bundle = make_bundle(patch_size=64, overlap=16)
    model = ModuleModel(ThreadRecorder(SignatureClassifier(bundle)).eval())
    expected = threads or available_cores()
    outputs = {}
    for name, scheduler, workers in (("here", "synchronous", None), ("dask", None, None), ("two", None, 2)):
        THREADS_SEEN.clear()
        options = PredictOptions(out=tmp_path / name, scheduler=scheduler, workers=workers, threads=threads,
                                 block_width=256, probabilities=True, quiet=True)
        (item,) = predict_with(bundle, model, [scene], options)
        assert item["properties"]["geossl:prediction"]["blocks"] == 2
        assert item["properties"]["geossl:prediction"]["threads"] == expected
        assert THREADS_SEEN and set(THREADS_SEEN) == {expected}, (name, THREADS_SEEN)
        outputs[name] = read(tmp_path / name / "scene_probabilities.tif")
    assert np.array_equal(outputs["here"], outputs["dask"]) and np.array_equal(outputs["here"], outputs["two"])


def test_tta_and_overrides(scene, checkpoint, tmp_path):
    small = crop_scene(scene, tmp_path / "small.tif", 160, 128)
    r = run_cli("predict", checkpoint, small, "--out", tmp_path / "out", "--tta", "--patch-size", "96", "--overlap",
                "32", "--batch-size", "3", "--scheduler", "synchronous")
    assert r.exit_code == 0, r.output
    item = json.loads((tmp_path / "out" / "small.json").read_text())
    pred = item["properties"]["geossl:prediction"]
    assert pred["tta"] and pred["patch_size"] == 96 and pred["overlap"] == 32 and pred["batch_size"] == 3
    assert pred["windows"] == 4  # rows start at 0 and 64, columns at 0 and 32
    valid = _valid(small)
    assert (read(tmp_path / "out" / "small_classes.tif")[0][valid] > 0).all()


def test_existing_output_folder_keeps_other_files(scene, checkpoint, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = run_cli("predict", checkpoint, scene, "--out", out, "--scheduler", "synchronous")
    assert r.exit_code == 0, r.output
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt", "scene.json", "scene_classes.qml", "scene_classes.tif", "scene_confidence.tif"]


@pytest.mark.parametrize("marking", ["nan", "mask"])
def test_nan_and_mask_are_nodata(tmp_path, marking):
    """Float scenes mark nodata with NaN, others with a per-dataset mask: both become nodata in the outputs."""
    src = make_scene(tmp_path / "full", size=128, border=False)
    with rasterio.open(src) as s:
        profile, data, desc = s.profile, s.read(), s.descriptions
    hole = np.zeros(data.shape[1:], dtype=bool)
    hole[30:60, 70:100] = True
    profile.pop("nodata")
    if marking == "nan":
        data = data.astype("float32")
        data[:, hole] = np.nan
        profile.update(dtype="float32", predictor=1)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp_path / "x.tif", "w", **profile) as d:
        d.write(data)
        d.descriptions = desc
        if marking == "mask":
            d.write_mask(np.where(hole, 0, 255).astype("uint8"))
    bundle = make_bundle(patch_size=64, overlap=16).model_copy(update={"nodata": None})
    predict_with(bundle, ModuleModel(SignatureClassifier(bundle).eval()), [tmp_path / "x.tif"],
                 PredictOptions(out=tmp_path / "out", scheduler="synchronous", quiet=True))
    cls, conf = read(tmp_path / "out" / "x_classes.tif")[0], read(tmp_path / "out" / "x_confidence.tif")[0]
    assert (cls[hole] == 0).all() and (conf[hole] == 0).all()
    assert (cls[~hole] > 0).all() and (conf[~hole] > 0).all()


class _TransposeSymmetric(torch.nn.Module):
    """``(f(x) + f(x^T)^T) / 2``: a network whose output on a transposed window is the transposed output."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.inner(x) + self.inner(x.transpose(-1, -2)).transpose(-1, -2)) / 2


def test_rows_and_columns_are_blended_alike(scene, tmp_path):
    """Rows are streamed and columns are not, yet a transposed scene must give the transposed prediction."""
    with rasterio.open(scene) as s:
        profile, data, desc = s.profile, s.read(), s.descriptions
    with rasterio.open(tmp_path / "transposed.tif", "w", **profile) as d:
        d.write(np.ascontiguousarray(data.transpose(0, 2, 1)))
        d.descriptions = desc
    bundle = make_bundle(patch_size=64, overlap=16)
    torch.manual_seed(0)
    model = _TransposeSymmetric(Segmenter(bundle.model)).eval()
    options = PredictOptions(out=tmp_path / "out", scheduler="synchronous", batch_size=1, quiet=True)
    predict_with(bundle, ModuleModel(model), [scene, tmp_path / "transposed.tif"], options, stride=32)
    a, t = read(tmp_path / "out" / "scene_confidence.tif")[0], read(tmp_path / "out" / "transposed_confidence.tif")[0]
    assert np.abs(a.astype(int) - t.T).max() <= 1  # float sums in another order
    ca, ct = read(tmp_path / "out" / "scene_classes.tif")[0], read(tmp_path / "out" / "transposed_classes.tif")[0]
    assert (ca == ct.T).mean() > 0.9999
