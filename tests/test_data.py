"""Training data over an ingested catalog: normalisation, regions, samplers, patches, views, overlaps."""

import numpy as np
import rasterio
import rasterio.features
import torch
from affine import Affine
from shapely import box
from shapely.geometry import mapping
from torch import nn

from geossl.catalog import SplitCollection, SplitFeature, SplitProperties, load_catalog
from geossl.data.module import SslDataModule, plan_splits
from geossl.data.normalize import IGNORE, LabelEncoder, Normalizer
from geossl.data.patches import PatchDataset
from geossl.data.rasters import catalog_rasters, with_labels
from geossl.data.regions import Region, reassign_labeled, split_regions
from geossl.data.samplers import PatchQuery, RegionSampler, dataset_grid
from geossl.data.views import undo_dihedral
from geossl.manifest import ClassDef
from geossl.models import ModelBundle, ModelConfig
from geossl.ssl.crossview import CrossViewConfig, spatial_overlap


def test_normalizer_matches_the_model_bundle():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 4000, (3, 20, 20)).astype(np.uint16)
    raw[1, 3, 4] = 0        # nodata in one band → the pixel is invalid in all
    bundle = ModelBundle(classes=[ClassDef(id=1, name="a", color="#000000")], bands=["x", "y", "z"],
                         mean=[100.0, 2000.0, 30.0], std=[10.0, 500.0, 0.0], nodata=0, patch_size=32, overlap=0,
                         model=ModelConfig(in_channels=3, num_classes=2))
    expected, valid = bundle.normalize(raw)
    got, got_valid = Normalizer(tuple(bundle.mean), tuple(bundle.std), 0)(torch.from_numpy(raw.astype(np.int32)))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(got_valid.numpy(), valid)
    assert not valid[3, 4] and np.all(expected[:, 3, 4] == 0)


def test_label_encoder_maps_ids_to_channels_and_the_rest_to_ignore():
    enc = LabelEncoder([ClassDef(id=5, name="a", color="#000000"), ClassDef(id=2, name="b", color="#000000")])
    raw = torch.tensor([[5, 2, 0], [7, 70000, -3]])
    assert enc(raw).tolist() == [[0, 1, IGNORE], [IGNORE, IGNORE, IGNORE]]


def test_split_regions_explode_features_into_parts(synth_catalog):
    catalog = load_catalog(synth_catalog)
    regions = split_regions(catalog)
    assert len(regions) == 16 and {r.key for r in regions} == {f"r{i}c{j}" for i in range(4) for j in range(4)}
    two = {"type": "MultiPolygon", "coordinates": [mapping(box(0, 0, 1, 1))["coordinates"],
                                                   mapping(box(5, 5, 6, 6))["coordinates"]]}
    drawn = catalog.model_copy(update={"splits": SplitCollection(features=[
        SplitFeature(geometry=two, properties=SplitProperties(split="labeled"))])})
    parts = split_regions(drawn)
    assert [(r.key, r.split) for r in parts] == [("labeled-0-0", "labeled"), ("labeled-0-1", "labeled")]


def test_reassign_labeled_draws_a_share_of_train_regions_with_labels():
    regions = [Region(f"t{i}", "labeled" if i < 2 else "unlabeled", box(i, 0, i + 1, 1)) for i in range(8)]
    regions += [Region("v", "val", box(20, 0, 21, 1))]
    counts = {r.key: np.array([0 if r.key == "t7" else 10]) for r in regions}
    a = reassign_labeled(regions, counts, 0.5, seed=1)
    b = reassign_labeled(regions, counts, 0.5, seed=1)
    labeled = [r.key for r in a if r.split == "labeled"]
    assert labeled == [r.key for r in b if r.split == "labeled"] and len(labeled) == 4 and "t7" not in labeled
    assert [r.split for r in a if r.key == "v"] == ["val"]
    everything = reassign_labeled(regions, counts, 1.0, seed=1)
    assert sorted(r.key for r in everything if r.split == "labeled") == [f"t{i}" for i in range(7)]


def _read(path, grid, query, size):
    with rasterio.open(path) as src:
        col = round((grid.left - src.transform.c) / src.transform.a) + query.col
        row = round((src.transform.f - grid.top) / -src.transform.e) + query.row
        return src.read(window=rasterio.windows.Window(col, row, size, size), boundless=True, fill_value=0)


def test_labeled_patch_holds_the_raster_labels_inside_its_region_only(synth_catalog):
    catalog = load_catalog(synth_catalog)
    images, labels = catalog_rasters(catalog, synth_catalog)
    regions = [r for r in split_regions(catalog) if r.split == "labeled"]
    enc = LabelEncoder(catalog.classes)
    dataset = PatchDataset(with_labels(images, labels), regions, 64, Normalizer.from_catalog(catalog), enc)
    grid = dataset_grid(dataset.source)
    minx, _, _, maxy = regions[0].geometry.bounds
    row, col = grid.snap(minx, maxy)
    query = PatchQuery(row - 20, col - 10, 0)   # straddles the region's top-left corner
    sample = dataset[query][0]
    raw_labels = _read(synth_catalog / catalog.scenes[0].labels, grid, query, 64)[0]
    raw_image = _read(synth_catalog / catalog.scenes[0].image, grid, query, 64)
    xmin, _, _, ymax = grid.window_bounds(query.row, query.col, 64)
    inside = rasterio.features.geometry_mask([regions[0].geometry], (64, 64),
                                             Affine(grid.xres, 0, xmin, 0, -grid.yres, ymax), invert=True)
    inside &= (raw_image != catalog.nodata).all(axis=0)
    assert 0 < inside.sum() < 64 * 64
    expected = np.where(inside, enc(torch.from_numpy(raw_labels.astype(np.int64))).numpy(), IGNORE)
    np.testing.assert_array_equal(sample["mask"].numpy(), expected)
    np.testing.assert_array_equal(sample["valid"].numpy(), inside)
    assert sample["origin"].tolist() == [query.row, query.col] and sample["geom"].tolist() == [0, 0]


def test_weak_view_moves_image_and_labels_together(synth_catalog):
    catalog = load_catalog(synth_catalog)
    images, labels = catalog_rasters(catalog, synth_catalog)
    regions = [r for r in split_regions(catalog) if r.split == "labeled"]
    dataset = PatchDataset(with_labels(images, labels), regions, 64, Normalizer.from_catalog(catalog),
                           LabelEncoder(catalog.classes))
    row, col = dataset_grid(dataset.source).snap(regions[0].geometry.bounds[0], regions[0].geometry.bounds[3])
    reference = dataset[PatchQuery(row + 5, col + 5, 0)][0]
    views = set()
    for rot in range(4):
        for flip in (False, True):
            s = dataset[PatchQuery(row + 5, col + 5, 0, rot, flip)][0]
            assert s["geom"].tolist() == [rot, int(flip)]
            views.add(tuple(s["image"].flatten()[:200].tolist()))
            for key in ("image", "mask", "valid"):
                assert torch.equal(undo_dihedral(s[key], rot, flip), reference[key])
    assert len(views) == 8


def test_region_sampler_items_depend_on_their_index_only(synth_catalog):
    catalog = load_catalog(synth_catalog)
    images, _ = catalog_rasters(catalog, synth_catalog)
    regions = [r for r in split_regions(catalog) if r.split == "unlabeled"]

    def items(start: int, seed: int = 3, rank: int = 0) -> list:
        return list(RegionSampler(images, regions, 64, length=10, seed=seed, pairs=(0.25, 0.75), rank=rank,
                                  start=lambda: start))

    first, second = items(0), items(10)
    assert len(first) == len(second) == 10 and first != second
    # a sampler started mid-epoch (a resumed run) yields the rest of that epoch, exactly
    assert items(6) == first[6:] and items(13) == second[3:]
    # every random choice varies: windows, partners, regions and the weak views' symmetries
    queries = [q for pair in first + second for q in pair]
    assert len({(q.row, q.col) for q in queries}) > 15 and len({(q.rot, q.flip) for q in queries}) > 4
    assert len({q.region for q in queries}) > 1
    assert items(0, seed=4) != first and items(0, rank=1) != first


def test_region_sampler_windows_touch_their_region_and_stay_on_the_grid(synth_catalog):
    catalog = load_catalog(synth_catalog)
    images, _ = catalog_rasters(catalog, synth_catalog)
    regions = [r for r in split_regions(catalog) if r.split == "unlabeled"]
    sampler = RegionSampler(images, regions, 64, length=40, seed=3, pairs=(0.25, 0.75))
    grid = dataset_grid(images)
    shares = []
    for a, b in sampler:
        assert a.region == b.region
        for q in (a, b):
            window = box(*grid.window_bounds(q.row, q.col, 64))
            assert window.intersects(regions[q.region].geometry)
            assert 0 <= q.row <= 512 - 64 and 0 <= q.col <= 512 - 64
        shares.append((64 - abs(a.row - b.row)) * (64 - abs(a.col - b.col)) / 64**2)
    # pairs overlap by 25-75% of the area unless moved back inside the region's box (which only adds overlap)
    assert min(shares) >= 0.25 - 1e-9 and np.mean([0.25 - 1e-9 <= s <= 0.75 + 0.02 for s in shares]) > 0.5


def test_overlap_of_real_window_pairs_is_tracked_exactly(synth_catalog):
    """With a per-pixel model and no photometric noise, partners agree on every shared map pixel."""
    catalog = load_catalog(synth_catalog)
    plan = plan_splits(catalog, synth_catalog, None, 0)
    torch.manual_seed(5)
    data = SslDataModule(catalog, synth_catalog, plan, CrossViewConfig().data_spec(), 64, 2, 8, 2, seed=5)
    per_pixel = nn.Conv2d(4, 6, 1)
    total = 0
    for batch in data.train_dataloader()["unlabeled"]:
        assert batch["partner"].tolist() == [1, 0, 3, 2, 5, 4, 7, 6]
        with torch.no_grad():
            probs, logits = per_pixel(batch["image"]).softmax(dim=1), per_pixel(batch["image"])
        no_box = torch.ones_like(batch["valid"])
        loss, shared = spatial_overlap(probs, logits, batch["valid"], no_box, batch["origin"], batch["geom"],
                                       batch["partner"], torch.zeros(6))
        assert float(loss) < 1e-6
        total += int(shared)
    assert total > 0
