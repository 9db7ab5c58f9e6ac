"""Which train regions keep their labels (geossl.selection), at ingest and at training time."""

import numpy as np

from geossl.ingest.splits import block_splits
from geossl.manifest import BlockSplits
from geossl.selection import choose_labeled


def test_random_takes_the_seeded_order():
    counts = np.array([[5, 0], [0, 5], [5, 5]])
    assert choose_labeled(counts, 2, "random") == [0, 1]
    assert choose_labeled(counts, 9, "random") == [0, 1, 2]


def test_cover_classes_covers_every_present_class_first():
    # classes: common, rare A, rare B, absent. Candidate 3 adds both rare classes, candidate 1 only one.
    counts = np.array([[100, 0, 0, 0], [90, 4, 0, 0], [80, 0, 0, 0], [10, 1, 2, 0], [70, 0, 0, 0]])
    assert choose_labeled(counts, 3, "cover_classes") == [3, 0, 1]


def test_cover_classes_prefers_more_pixels_of_the_rarer_class_on_a_tie():
    counts = np.array([[50, 0], [50, 1], [50, 3]])
    # candidates 1 and 2 both add the two classes; 2 holds more of the rare one
    assert choose_labeled(counts, 1, "cover_classes") == [2]


def test_cover_classes_with_too_few_regions_stops_at_n():
    counts = np.eye(4)
    chosen = choose_labeled(counts, 2, "cover_classes")
    assert len(chosen) == 2 and len(set(chosen)) == 2


def test_block_splits_labeled_selection_changes_only_the_labeled_blocks():
    rows, cols, k = 4, 4, 3
    counts = np.zeros((rows, cols, k))
    counts[..., 0] = 0.9
    counts[3, 3, 2] = 0.01  # one block holds the rare class
    bounds = (0.0, 0.0, 4.0, 4.0)
    base = dict(rows=rows, cols=cols, val_fraction=0.25, test_fraction=0.25, labeled_fraction=0.125, seed=0)
    rand = block_splits(BlockSplits(**base), bounds, counts)
    cover = block_splits(BlockSplits(**base, labeled_selection="cover_classes"), bounds, counts)

    def split_of(features, split):
        return {(f.properties.row, f.properties.col) for f in features if f.properties.split == split}

    for split in ("val", "test"):
        assert split_of(rand, split) == split_of(cover, split)
    assert (3, 3) in split_of(rand, "unlabeled")  # with seed 0 the random draw leaves the rare block unlabeled
    assert split_of(cover, "labeled") == {(3, 3)}
    assert len(split_of(rand, "labeled")) == 1


def test_reassign_labeled_cover_classes_at_training_time():
    from shapely import box

    from geossl.data.regions import Region, reassign_labeled

    regions = [Region(f"t{i}", "labeled" if i < 2 else "unlabeled", box(i, 0, i + 1, 1)) for i in range(8)]
    counts = {r.key: np.array([10, 0]) for r in regions}
    counts["t5"] = np.array([10, 3])
    for seed in range(5):
        out = reassign_labeled(regions, counts, 0.25, seed, "cover_classes")
        assert "t5" in {r.key for r in out if r.split == "labeled"}
