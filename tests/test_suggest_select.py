"""The greedy choice of suggestions (geossl.suggest.select) and the per-pixel uncertainty, on small made-up cases."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geossl.suggest.candidates import Candidates
from geossl.suggest.select import choose, feature_scale, most_uncertain, pool_size
from geossl.suggest.uncertainty import uncertainty

SIZE = 10


def _candidates(uncertain, cols, shares) -> Candidates:
    n = len(uncertain)
    cols = np.asarray(cols)
    boxes = np.stack([cols, np.zeros(n), cols + SIZE, np.full(n, SIZE)], axis=1).astype(float)
    return Candidates(scene=np.zeros(n, int), row=np.zeros(n, int), col=cols, boxes=boxes,
                      uncertainty=np.asarray(uncertain, float), shares=np.asarray(shares, float),
                      priority=np.asarray(uncertain, float))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# Three windows of one confusing lake (alike, the most uncertain), two other places, all apart on the ground.
LAKE = _candidates([0.9, 0.88, 0.86, 0.6, 0.5], [0, 20, 40, 60, 80],
                   [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
FEATURES = _unit([[1, 0.01, 0], [1, 0.02, 0], [1, 0, 0.02], [0, 1, 0], [0.2, 0.3, 1]])


def test_without_diversity_the_most_uncertain_windows_come_first():
    chosen = choose(LAKE, 3, SIZE, "none")
    assert [c.index for c in chosen] == [0, 1, 2]
    assert [c.score for c in chosen] == pytest.approx([0.9, 0.88, 0.86])


def test_feature_diversity_passes_over_windows_like_one_already_chosen():
    chosen = choose(LAKE, 3, SIZE, "features", FEATURES)
    assert [c.index for c in chosen] == [0, 3, 4]
    assert chosen[0].score == pytest.approx(0.9)
    delta = feature_scale(FEATURES)
    d3 = 1 - FEATURES[3] @ FEATURES[0]
    assert chosen[1].score == pytest.approx(0.6 * min(1.0, d3 / delta), rel=1e-5)
    scores = [c.score for c in chosen]
    assert scores == sorted(scores, reverse=True)


def test_class_diversity_halves_the_score_of_a_class_already_chosen():
    chosen = choose(LAKE, 4, SIZE, "classes")
    assert [c.index for c in chosen] == [0, 3, 4, 1]
    assert [c.score for c in chosen] == pytest.approx([0.9, 0.6, 0.5, 0.44])


def test_overlapping_windows_are_never_both_chosen():
    # candidates half a window apart: only every other one can be taken
    near = _candidates([0.9, 0.95, 0.8, 0.7], [0, 5, 10, 15], [[1, 0, 0]] * 4)
    chosen = choose(near, 4, SIZE, "none")
    assert [c.index for c in chosen] == [1, 3]  # 1 overlaps 0 and 2; 3 is clear of 1


def test_the_pool_takes_each_place_at_its_best_shift_and_skips_its_other_shifts():
    # windows of 10 px a few px apart along one row; half a window is 5 px
    shifts = _candidates([0.5, 0.9, 0.7, 0.8, 0.6, 0.1], [0, 2, 4, 7, 12, 20], [[1, 0, 0]] * 6)
    # 1 first; 3 starts 5 px from it; 2 and 0 start within 5 px of 1; 4 is 5 px from 3; 5 is clear of all
    assert most_uncertain(shifts, 1, SIZE).tolist() == [1, 3, 4, 5]
    assert pool_size(1) > 4


def test_uncertainty_measures_are_zero_when_sure_and_one_on_a_tie():
    p = np.array([[1.0, 0.5, 1 / 3, 0.6], [0.0, 0.5, 1 / 3, 0.3], [0.0, 0.0, 1 / 3, 0.1]])[:, None, :]
    h = -(0.6 * np.log(0.6) + 0.3 * np.log(0.3) + 0.1 * np.log(0.1)) / np.log(3)
    assert uncertainty(p, "entropy")[0] == pytest.approx([0, np.log(2) / np.log(3), 1, h], abs=1e-6)
    assert uncertainty(p, "margin")[0] == pytest.approx([0, 1, 1, 0.7])


def test_class_weights_raise_the_priority_of_windows_where_rare_classes_are_predicted():
    from geossl.io.cog import Grid
    from geossl.predict.scene import Scene
    from geossl.suggest.candidates import Placement, window_candidates
    from geossl.suggest.options import CELLS_PER_WINDOW as M
    from geossl.suggest.scan import Area, CellStats

    # one window of M x M cells of 1 px: its bottom-right quarter predicted rare (uncertainty 0.25 a pixel), the
    # rest common (uncertainty 0.5)
    stats = CellStats.empty(Area(0, 0, M, M), 1, 2)
    stats.valid[:] = 1
    rare = np.zeros((M, M), bool)
    rare[M // 2:, M // 2:] = True
    stats.classes[:] = np.stack([~rare, rare], axis=-1)
    stats.uncertainty[:] = np.stack([0.5 * ~rare, 0.25 * rare], axis=-1)
    grid = Grid(crs=None, transform=rasterio.Affine(10, 0, 0, 0, -10, 10 * M), width=M, height=M)
    scene = Scene(path=Path("s.tif"), id="s", grid=grid, count=4, nodata=None, dataset_mask=False)
    placed = Placement(0, Area(0, 0, M, M), np.array([0]), np.array([0]))
    plain = window_candidates(stats, placed, scene, M, np.ones(2))
    weighted = window_candidates(stats, placed, scene, M, np.array([0.5, 3.0]))
    assert plain.uncertainty[0] == pytest.approx(7 / 16) and plain.priority[0] == pytest.approx(7 / 16)
    assert weighted.uncertainty[0] == pytest.approx(7 / 16)
    assert weighted.priority[0] == pytest.approx((6 * 0.5 + 1 * 3.0) / 16)
    assert weighted.shares[0] == pytest.approx([0.75, 0.25])
    assert weighted.boxes[0] == pytest.approx([0, 0, 10 * M, 10 * M])


def test_balanced_weights_average_one_over_the_labeled_pixels():
    from geossl.classweights import balanced_weights

    w = balanced_weights(np.array([900, 100, 0]))
    assert (w[:2] * [0.9, 0.1]).sum() == pytest.approx(1.0)
    assert w[1] / w[0] == pytest.approx(3.0) and w[2] == w[1]  # 1/sqrt(f); a class without labels: the largest


def test_a_window_can_start_within_an_eighth_of_a_window_of_the_unlabeled_areas_edge():
    import shapely

    from geossl.io.cog import Grid
    from geossl.predict.scene import Scene
    from geossl.suggest.candidates import place_windows
    from geossl.suggest.scan import Area

    # 1 m pixels; the unlabeled area starts 21 px from the scanned area's left edge: off a half-window (32 px)
    # grid, so half-window steps would leave its first 11 px out of every window
    size, width = 64, 200
    grid = Grid(crs=None, transform=rasterio.Affine(1, 0, 0, 0, -1, width), width=width, height=width)
    scene = Scene(path=Path("s.tif"), id="s", grid=grid, count=4, nodata=None, dataset_mask=False)
    inside = shapely.box(21, 0, width, width)
    placed = place_windows(scene, 0, Area(0, 0, width, width), size, inside, shapely.box(0, 0, 21, width))
    _, cols = placed.origins(size)
    assert cols.min() - 21 < size // 8
    assert cols.min() >= 21  # and never over the other area


def test_labeled_windows_are_placed_half_a_window_apart():
    import shapely

    from geossl.io.cog import Grid
    from geossl.predict.scene import Scene
    from geossl.suggest.candidates import place_windows
    from geossl.suggest.options import CELLS_PER_WINDOW
    from geossl.suggest.scan import Area

    size, width = 64, 128
    grid = Grid(crs=None, transform=rasterio.Affine(1, 0, 0, 0, -1, width), width=width, height=width)
    scene = Scene(path=Path("s.tif"), id="s", grid=grid, count=4, nodata=None, dataset_mask=False)
    area, everywhere = Area(0, 0, width, width), shapely.box(0, 0, width, width)
    fine = place_windows(scene, 0, area, size, everywhere, None)
    half = place_windows(scene, 0, area, size, everywhere, None, step=CELLS_PER_WINDOW // 2)
    assert len(fine) == (width // 8 - 7) ** 2  # one every 8 px
    assert sorted(set(half.origins(size)[0].tolist())) == [0, 32, 64] and len(half) == 9
