"""``--ranking typical`` (geossl.suggest.typical) on small made-up cases: clusters, coverage, typicality."""

import numpy as np
import pytest

from geossl.suggest.candidates import Candidates
from geossl.suggest.typical import choose_typical, kmeans, subsample, typicality

SIZE = 10


def _candidates(cols) -> Candidates:
    n = len(cols)
    cols = np.asarray(cols)
    boxes = np.stack([cols, np.zeros(n), cols + SIZE, np.full(n, SIZE)], axis=1).astype(float)
    return Candidates(scene=np.zeros(n, int), row=np.zeros(n, int), col=cols, boxes=boxes,
                      uncertainty=np.zeros(n), shares=np.full((n, 2), 0.5), priority=np.zeros(n))


def _blob(centre, offsets) -> np.ndarray:
    return np.asarray(centre, float) + np.asarray(offsets, float)


# Three groups of look-alike windows: A (6, the largest), B (4: its first window at the centre), C (3).
A = _blob([1, 0, 0], [[0, 0, 0], [.02, 0, 0], [-.02, 0, 0], [0, .02, 0], [0, -.02, 0], [0, 0, .02]])
B = _blob([0, 1, 0], [[0, 0, 0], [.05, 0, 0], [-.05, 0, 0], [0, 0, .05]])
C = _blob([0, 0, 1], [[0, 0, 0], [.04, 0, 0], [-.04, .01, 0]])
FEATURES = np.concatenate([A, B, C])
LABELED = _blob([1, 0, 0], [[.01, .01, 0]])  # one labeled window, like the windows of group A


def test_kmeans_finds_separate_groups():
    labels = kmeans(FEATURES, 3)
    groups = [labels[:6], labels[6:10], labels[10:]]
    assert all(len(set(g)) == 1 for g in groups)
    assert len({g[0] for g in groups}) == 3


def test_the_largest_groups_the_labels_do_not_cover_come_first_each_by_its_most_typical_window():
    pool = _candidates(np.arange(13) * 20)  # apart on the ground
    chosen = choose_typical(pool, FEATURES, LABELED, 2, SIZE)
    assert [c.index for c in chosen] == [6, 10]  # B's centre, then C's; A is covered by the labeled window
    assert [c.score for c in chosen] == pytest.approx([4 / 13, 3 / 13])


def test_a_window_that_overlaps_a_chosen_one_gives_way_to_the_next_most_typical_of_its_group():
    cols = np.arange(13) * 20
    cols[10] = cols[6] + SIZE // 2  # C's most typical window shares pixels with B's
    chosen = choose_typical(_candidates(cols), FEATURES, LABELED, 2, SIZE)
    assert chosen[0].index == 6 and chosen[1].index in (11, 12)


def test_when_too_few_groups_are_uncovered_covered_ones_follow_with_a_zero_score():
    features = np.concatenate([A[:1], B[:1], C[:1]])
    chosen = choose_typical(_candidates([0, 20, 40]), features, features[:2], 2, SIZE)
    assert chosen[0].index == 2 and chosen[0].score == pytest.approx(1 / 3)
    assert chosen[1].index in (0, 1) and chosen[1].score == 0.0


def test_without_labeled_windows_the_largest_groups_come_first():
    chosen = choose_typical(_candidates(np.arange(13) * 20), FEATURES, np.zeros((0, 0)), 3, SIZE)
    assert [c.score for c in chosen] == pytest.approx([6 / 13, 4 / 13, 3 / 13])
    assert [c.index for c in chosen][1:] == [6, 10]


def test_typicality_is_highest_at_the_centre_of_a_group():
    t = typicality(B)
    assert int(np.argmax(t)) == 0 and (t > 0).all()
    assert typicality(B[:1]).tolist() == [1.0]


def test_subsample_keeps_every_candidate_up_to_the_cap_then_spreads_evenly():
    assert subsample(7).tolist() == list(range(7))
    big = subsample(25_000)
    assert len(big) == 10_000 and big[0] == 0 and big[-1] == 24_999 and np.all(np.diff(big) > 0)
