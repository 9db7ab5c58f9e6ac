"""The random-forest peer of the accuracy bench (bench/forest.py) on the synthetic scene."""

import numpy as np
import pytest

from bench import forest
from geossl.catalog import load_catalog
from geossl.data.module import plan_splits
from geossl.data.regions import region_class_counts

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
