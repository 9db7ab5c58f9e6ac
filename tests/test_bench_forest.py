"""The random-forest peer of the accuracy bench (bench/forest.py) on the synthetic scene."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.features

from bench import forest
from geossl.catalog import load_catalog
from geossl.data.module import plan_splits
from geossl.data.regions import region_class_counts
from tests.conftest import ROOT

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"

pytest.importorskip("sklearn")


def test_cap_per_class_keeps_small_classes_and_caps_large_ones():
    y = np.array([0] * 50 + [1] * 5 + [2] * 20)
    keep = forest.cap_per_class(y, 10, seed=1)
    assert np.bincount(y[keep]).tolist() == [10, 5, 10]
    assert np.array_equal(keep, forest.cap_per_class(y, 10, seed=1)) and np.all(np.diff(keep) > 0)
    assert not np.array_equal(keep, forest.cap_per_class(y, 10, seed=2))
    assert np.array_equal(forest.cap_per_class(y, None, seed=1), np.arange(len(y)))


def test_forest_rows_train_on_the_labeled_blocks_and_score_every_test_pixel(synth_catalog, monkeypatch):
    monkeypatch.setattr(forest, "TREES", 10)
    runs = forest.forest_runs(synth_catalog, seed=0, threads=1, max_per_class=None)
    assert set(runs) == {"forest_1/8@0", "forest_full@0"}
    catalog = load_catalog(synth_catalog)
    ids = [c.id for c in catalog.classes]
    labels = [synth_catalog / s.labels for s in catalog.scenes]
    for row, fraction in forest.FOREST_ROWS.items():
        plan = plan_splits(catalog, synth_catalog, fraction, 0)
        record = runs[f"{row}@0"]
        assert record["labeled_pixels"] == record["train_pixels"] == int(plan.labeled_counts.sum())
        test = sum(region_class_counts(labels, plan.of("test"), ids).values())
        assert record["test_pixels"] == int(test.sum())
        assert 0 <= record["miou"] <= 1 and 0 <= record["val_miou"] <= 1
        assert set(record["iou"]) == {c.name for c in catalog.classes}
    assert runs["forest_full@0"]["labeled_pixels"] > runs["forest_1/8@0"]["labeled_pixels"]
    # the synthetic classes differ in their band values: a forest on pixels separates them well above chance
    assert runs["forest_full@0"]["oa"] > 2 / len(ids)


def _scene_prior(folder: Path, catalog) -> np.ndarray:
    with rasterio.open(folder / f"{catalog.scenes[0].id}.tif") as src:
        return src.read(1)


def test_the_forest_prior_sees_only_the_labeled_blocks_and_covers_the_scene(synth_dir, synth_catalog, tmp_path,
                                                                           monkeypatch):
    from bench import forest_prior
    from geossl.ingest.run import IngestOptions, ingest
    from geossl.train.config import TrainConfig
    from geossl.train.run import prior_in_use

    monkeypatch.setattr(forest_prior, "TREES", 10)
    catalog = load_catalog(synth_catalog)
    manifest, record = forest_prior.forest_prior(MANIFEST, synth_dir, synth_catalog, tmp_path / "a", 0, 1, None)
    assert record["train_pixels"] == int(plan_splits(catalog, synth_catalog, None, 0).labeled_counts.sum())
    prior = _scene_prior(tmp_path / "a", catalog)
    with rasterio.open(synth_catalog / catalog.scenes[0].image) as image:
        valid = ~np.ma.getmaskarray(image.read(masked=True)).any(axis=0)
        assert prior.shape == (image.height, image.width)
    assert set(np.unique(prior[valid]).tolist()) <= {c.id for c in catalog.classes}
    assert (prior[~valid] == catalog.ignore_id).all()
    # no truth outside the labeled blocks: scrambling every other label leaves the prior unchanged
    scrambled = tmp_path / "scrambled"
    shutil.copytree(synth_catalog, scrambled)
    labels_path = scrambled / catalog.scenes[0].labels
    with rasterio.open(labels_path) as src:
        labels, profile = src.read(1), src.profile
    labeled = plan_splits(catalog, synth_catalog, None, 0).of("labeled")
    inside = rasterio.features.geometry_mask([r.geometry for r in labeled], labels.shape, profile["transform"],
                                             invert=True)
    noise = np.random.default_rng(0).integers(1, 7, labels.shape)
    labels_path.unlink()
    with rasterio.open(labels_path, "w", **{**profile, "driver": "GTiff"}) as dst:
        dst.write(np.where(inside, labels, noise).astype(labels.dtype), 1)
    forest_prior.forest_prior(MANIFEST, synth_dir, scrambled, tmp_path / "b", 0, 1, None)
    assert np.array_equal(_scene_prior(tmp_path / "b", catalog), prior)
    # the manifest it wrote ingests into a catalog whose prior a pseudo-labelling strategy uses
    ingest(manifest, IngestOptions(out=tmp_path / "catalog", workers=1, quiet=True))
    with_prior = load_catalog(tmp_path / "catalog")
    assert prior_in_use(TrainConfig(strategy="fixmatch"), with_prior)
    with rasterio.open(tmp_path / "catalog" / with_prior.scenes[0].prior) as ingested:
        assert np.array_equal(ingested.read(1), prior)
