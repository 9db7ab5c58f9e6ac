"""Class-balanced labeled windows: a rare class is seen at its design rate, windows stay in their regions."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely import box

from geossl.catalog import load_catalog
from geossl.data.module import SslDataModule, plan_splits
from geossl.data.rasters import LabelRasters
from geossl.data.regions import Region, labeled_positions
from geossl.data.samplers import RegionSampler, dataset_grid
from geossl.data.spec import DataSpec
from geossl.train.config import TrainConfig
from geossl.train.run import train
from tests.test_train import MANIFEST, KillAt, Killed, assert_same_training_state, resumable_config, training_state

RES, LEFT, TOP, SIDE, PATCH = 30.0, 300_000.0, 4_200_000.0, 320, 32
RARE, BLOB = 4, (40, 50)  # class id 4: a 2 x 2 blob at (row, col) in the first region, nowhere else


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> tuple[LabelRasters, list[Region]]:
    """A 320 x 320 label raster: classes 1 and 2 (halves), 3 (a band), 4 (4 pixels); two 160 px regions."""
    labels = np.ones((SIDE, SIDE), dtype=np.uint8)
    labels[:, SIDE // 2:] = 2
    labels[100:110, :] = 3
    labels[BLOB[0]:BLOB[0] + 2, BLOB[1]:BLOB[1] + 2] = RARE
    path = tmp_path_factory.mktemp("balanced") / "labels.tif"
    with rasterio.open(path, "w", driver="GTiff", width=SIDE, height=SIDE, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32612", transform=from_origin(LEFT, TOP, RES, RES)) as dst:
        dst.write(labels, 1)
    half = SIDE // 2 * RES
    regions = [Region("a", "labeled", box(LEFT, TOP - half, LEFT + half, TOP)),
               Region("b", "labeled", box(LEFT + half, TOP - 2 * half, LEFT + 2 * half, TOP - half))]
    return LabelRasters(paths=[str(path)], res=(RES, RES)), regions


def rare_rate(scene: tuple[LabelRasters, list[Region]], balanced: bool, n: int = 400) -> float:
    """Share of ``n`` windows whose labels (read from the raster) hold the rare class; checks each window's box."""
    dataset, regions = scene
    positions = labeled_positions([Path(dataset.files[0])], regions, [1, 2, 3, RARE]) if balanced else None
    sampler = RegionSampler(dataset, regions, PATCH, length=n, seed=7, stream="windows/labeled", positions=positions)
    grid = dataset_grid(dataset)
    hits = 0
    for query in sampler:
        xmin, ymin, xmax, ymax = grid.window_bounds(query.row, query.col, PATCH)
        assert box(*regions[query.region].geometry.bounds).buffer(1e-6).contains(box(xmin, ymin, xmax, ymax))
        hits += int((dataset[slice(xmin, xmax), slice(ymin, ymax)]["mask"] == RARE).any())
    return hits / n


def test_positions_hold_every_labeled_pixel_of_a_rare_class(scene):
    dataset, regions = scene
    positions = labeled_positions([Path(dataset.files[0])], regions, [1, 2, 3, RARE], cap=500)
    assert positions.present() == [0, 1, 2, 3]
    assert len(positions.xy[3]) == 4 and set(positions.region[3].tolist()) == {0}
    np.testing.assert_allclose(positions.xy[3].min(axis=0), [LEFT + (BLOB[1] + 0.5) * RES,
                                                             TOP - (BLOB[0] + 1.5) * RES])
    assert all(len(a) == 500 for a in positions.xy[:3])  # common classes thinned to the cap


def test_class_balanced_windows_show_a_rare_class_at_its_design_rate(scene):
    """Uniform windows rarely hold the 4-pixel class (~3 %); balanced ones at least 1/4 of the time (4 classes)."""
    uniform, balanced = rare_rate(scene, False), rare_rate(scene, True)
    assert uniform < 0.08
    assert balanced > 0.2


def test_class_balanced_items_depend_on_their_index_only(scene):
    dataset, regions = scene
    positions = labeled_positions([Path(dataset.files[0])], regions, [1, 2, 3, RARE])

    def items(start: int, seed: int = 3) -> list:
        return list(RegionSampler(dataset, regions, PATCH, length=10, seed=seed, positions=positions,
                                  start=lambda: start))

    first = items(0)
    assert items(6) == first[6:] and items(0) == first and items(0, seed=4) != first
    assert len({(q.row, q.col) for q in first}) > 5


def test_the_training_data_uses_the_option(synth_catalog):
    assert TrainConfig().labeled_sampling == "uniform"
    catalog = load_catalog(synth_catalog)
    plan = plan_splits(catalog, synth_catalog, None, 0)
    for option, expected in (("uniform", False), ("class_balanced", True)):
        dm = SslDataModule(catalog, synth_catalog, plan, DataSpec(unlabeled=False), 64, 2, 2, 1,
                           labeled_sampling=option)
        assert (dm.train_dataloader()["labeled"].sampler.positions is not None) is expected


def test_a_killed_class_balanced_run_resumes_to_the_uninterrupted_weights(synth_catalog, tmp_path):
    config = TrainConfig(**{**resumable_config("supervised").model_dump(), "labeled_sampling": "class_balanced"})
    train(MANIFEST, config, tmp_path / "once", synth_catalog, quiet=True)
    with pytest.raises(Killed):
        train(MANIFEST, config, tmp_path / "killed", synth_catalog, quiet=True, callbacks=[KillAt(3)])
    train(MANIFEST, config, tmp_path / "killed", synth_catalog, resume=True, quiet=True)
    assert_same_training_state(training_state(tmp_path / "once"), training_state(tmp_path / "killed"))
