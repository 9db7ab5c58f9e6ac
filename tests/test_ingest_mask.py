"""Imagery without a nodata value: a warp's empty pixels are masked, and no valid pixel (a 255) becomes nodata."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
import yaml
from rasterio.transform import from_origin
from rasterio.warp import transform

from geossl.catalog import load_catalog
from geossl.data.normalize import Normalizer
from geossl.data.patches import PatchDataset
from geossl.data.rasters import catalog_rasters
from geossl.data.regions import Region
from geossl.data.samplers import PatchQuery
from geossl.ingest.run import IngestOptions, ingest
from geossl.io.valid import has_mask, read_valid
from geossl.manifest import ClassDef
from geossl.models import ModelBundle, ModelConfig
from geossl.predict.run import PredictOptions, predict_with
from geossl.predict.runner import ModuleModel
from geossl.predict.scene import open_scenes
from tests.conftest import SHARED_DATA

BANDS = ["red", "green", "blue"]
CLASSES = [ClassDef(id=1, name="Background", color="#d9d9c8"), ClassDef(id=2, name="Building", color="#d7301f")]
#: Zanzibar's fAIr tiles (EPSG:4326, 8-bit RGB, no nodata), under the shared data root.
ZANZIBAR = SHARED_DATA / "fair" / "zanzibar" / "img"
#: Four neighbouring tiles (2 x 2) with many saturated pixels: 9,990 pixels with a 255 in some band.
SATURATED_TILES = [f"OAM-{x}-{y}-20.tif" for x in (638598, 638599) for y in (541920, 541921)]


def _manifest(folder: Path, paths: list[str], resolution: float) -> Path:
    """A manifest of RGB imagery without labels, warped onto UTM zone 37S."""
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump({
        "name": "masked", "classes": [c.model_dump(mode="json") for c in CLASSES],
        "imagery": {"paths": paths, "bands": BANDS}, "grid": {"crs": "EPSG:32737", "resolution": resolution}}))
    return path


@pytest.fixture(scope="module")
def white(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A uint8 RGB scene of 255s only (no nodata) in EPSG:4326, 5 degrees off the UTM zone's meridian, ingested."""
    src = tmp_path_factory.mktemp("white")
    profile = {"driver": "GTiff", "width": 96, "height": 80, "count": 3, "dtype": "uint8", "crs": "EPSG:4326",
               "transform": from_origin(34.0, -40.0, 1e-4, 1e-4)}
    with rasterio.open(src / "white.tif", "w", **profile) as dst:
        dst.write(np.full((3, 80, 96), 255, np.uint8))
    out = src / "catalog"
    ingest(_manifest(src, ["white.tif"], 10.0), IngestOptions(out=out, data_root=src, workers=1, quiet=True))
    return out


def _source_position(image: rasterio.io.DatasetReader, source: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Where each pixel centre of ``image`` falls in ``source`` (column, row in source pixels), and its shape."""
    rows, cols = np.mgrid[0 : image.height, 0 : image.width]
    xs, ys = rasterio.transform.xy(image.transform, rows.ravel(), cols.ravel())
    with rasterio.open(source) as src:
        lon, lat = transform(image.crs, src.crs, xs, ys)
        col, row = ~src.transform @ (np.asarray(lon), np.asarray(lat))
        shape = (src.height, src.width)
    return col.reshape(rows.shape), row.reshape(rows.shape), shape


def _inside(col: np.ndarray, row: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    """Pixels whose centre lies in the source at least ``margin`` source pixels from its edge (< 0: outside)."""
    return (col >= margin) & (col <= shape[1] - margin) & (row >= margin) & (row <= shape[0] - margin)


def test_every_source_pixel_stays_valid_and_the_warped_border_is_masked(white):
    catalog = load_catalog(white)
    assert catalog.nodata is None
    with rasterio.open(white / catalog.scenes[0].image) as img:
        assert img.nodata is None and has_mask(img) and img.count == 3
        data, mask = img.read(), img.dataset_mask() > 0
        col, row, shape = _source_position(img, Path(catalog.scenes[0].source))
    inside, outside = _inside(col, row, shape, 0.5), ~_inside(col, row, shape, -0.5)
    assert inside.sum() > 0.8 * mask.size and outside.sum() > 100  # a border the warp leaves empty
    assert mask[inside].all() and (data[:, inside] == 255).all()  # kept, value and all
    assert not mask[outside].any()


def test_statistics_count_the_255s(white):
    catalog = load_catalog(white)
    with rasterio.open(white / catalog.scenes[0].image) as img:
        valid = int((img.dataset_mask() > 0).sum())
    for stats in (catalog.band_stats, catalog.scenes[0].band_stats):
        assert [s.count for s in stats] == [valid] * 3
        assert all(s.min == s.max == s.mean == 255 and s.std == 0 for s in stats)


def test_training_window_takes_the_255s_as_valid(white):
    catalog = load_catalog(white)
    images, labels = catalog_rasters(catalog, white)
    assert labels is None
    scene = catalog.scenes[0]
    region = Region(key=scene.id, split=None, geometry=shapely.box(*scene.bounds))
    dataset = PatchDataset(images, [region], 32, Normalizer.from_catalog(catalog))
    with rasterio.open(white / scene.image) as img:
        mask = img.dataset_mask() > 0
    for row, col in ((0, 0), (scene.height - 32, scene.width - 32), (20, 30)):
        sample = dataset.read(PatchQuery(row=row, col=col, region=0))
        np.testing.assert_array_equal(sample["valid"].numpy(), mask[row : row + 32, col : col + 32])
        assert torch.all(sample["image"][:, ~sample["valid"]] == 0)


def _bundle(nodata: float | None) -> ModelBundle:
    """A bundle of the scene's bands (mean 128: a 255 normalises to a positive value)."""
    cfg = ModelConfig(arch="unet", encoder="tu-resnet10t", in_channels=3, num_classes=2)
    return ModelBundle(classes=CLASSES, bands=BANDS, mean=[128.0] * 3, std=[64.0] * 3, nodata=nodata,
                       patch_size=32, overlap=8, model=cfg, crs="EPSG:32737")


@pytest.mark.parametrize("nodata", [None, 255.0], ids=["masked-bundle", "bundle-of-an-older-255-nodata"])
def test_prediction_takes_the_255s_as_valid(white, nodata, tmp_path):
    """A bundle trained on masked imagery, and one of the old ingest (nodata 255), read the scene by its mask."""
    image = white / load_catalog(white).scenes[0].image
    bundle = _bundle(nodata)
    model = torch.nn.Conv2d(3, 2, 1)
    with torch.no_grad():  # class 2 (Building) wherever the normalised red band is positive
        model.weight.zero_()
        model.bias.zero_()
        model.weight[1, 0] = 1.0
    predict_with(bundle, ModuleModel(model.eval()), [image], PredictOptions(out=tmp_path, scheduler="synchronous",
                                                                            quiet=True))
    with rasterio.open(image) as img, rasterio.open(tmp_path / f"{image.stem}_classes.tif") as out:
        mask, classes, cls_nodata = img.dataset_mask() > 0, out.read(1), out.nodata
    assert (classes[mask] == 2).all()
    assert (classes[~mask] == cls_nodata).all()


def test_a_scene_declaring_nodata_keeps_it_with_a_masked_bundle(white, tmp_path):
    """The scene's declared nodata marks its pixels; a scene that marks nothing is read as the bundle says."""
    image = white / load_catalog(white).scenes[0].image
    with rasterio.open(image) as img:
        profile, data = img.profile | {"driver": "GTiff"}, img.read()
    for name, nodata in (("declared.tif", 255), ("plain.tif", None)):
        with rasterio.open(tmp_path / name, "w", **(profile | {"nodata": nodata})) as dst:
            dst.write(data)
    declared, plain = open_scenes([tmp_path / "declared.tif", tmp_path / "plain.tif"], _bundle(None))
    (masked,) = open_scenes([image], _bundle(255.0))
    assert (declared.nodata, plain.nodata, masked.nodata) == (255, None, None)
    assert open_scenes([tmp_path / "plain.tif"], _bundle(255.0))[0].nodata == 255


@pytest.fixture(scope="module")
def zanzibar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four fAIr Zanzibar tiles ingested onto UTM at 0.15 m (skipped when the data is absent)."""
    tiles = [ZANZIBAR / name for name in SATURATED_TILES]
    if not all(t.is_file() for t in tiles):
        pytest.skip(f"fAIr Zanzibar tiles not found under {ZANZIBAR}")
    folder = tmp_path_factory.mktemp("zanzibar")
    paths = [str(t.relative_to(SHARED_DATA)) for t in tiles]
    out = folder / "catalog"
    ingest(_manifest(folder, paths, 0.15), IngestOptions(out=out, data_root=SHARED_DATA, workers=1, quiet=True))
    return out


def test_real_tiles_lose_no_source_pixel(zanzibar):
    catalog = load_catalog(zanzibar)
    saturated = 0
    for scene in catalog.scenes:
        with rasterio.open(zanzibar / scene.image) as img:
            data = img.read()
            valid = read_valid(img, data, img.nodata)
            col, row, shape = _source_position(img, Path(scene.source))
        inside = _inside(col, row, shape, 0.5)
        assert valid[inside].all(), f"{scene.id}: {(~valid[inside]).sum()} pixels inside the tile are masked"
        assert not valid[~_inside(col, row, shape, -0.5)].any()
        assert scene.band_stats[0].count == valid.sum()  # the statistics count every valid pixel, 255s too
        saturated += int(((data == 255).any(axis=0) & inside).sum())
    assert saturated > 5000  # the tiles' saturated pixels are there, valid, after the warp
