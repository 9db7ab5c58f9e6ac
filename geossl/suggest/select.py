"""The greedy choice of the suggestions: uncertain windows that do not look alike.

Candidate ``i`` has the priority ``u_i``: the mean of its pixels' uncertainty (in [0, 1], :mod:`.uncertainty`),
each pixel's times the weight ``w_c`` of its predicted class (1 unless ``--class-weighting balanced``, then
training's balanced weights, :mod:`geossl.classweights`, so pixels predicted as rare classes count more).
Suggestions are chosen one at a time; at each step every remaining candidate gets the score::

    s_i = u_i · g_i

and the candidate with the highest score is taken, with that score as its ``score``. The diversity factor
``g_i`` in [0, 1] only shrinks as windows are chosen, so scores never increase with rank. A candidate that
shares pixels with a chosen window is never taken. ``g_i`` by ``--diversity``:

- ``features``: ``g_i = min(1, D_i / δ)`` with ``D_i = min_j (1 − f_i · f_j)`` over the chosen windows ``j``
  (``g_i = 1`` before the first choice), where ``f`` are the windows' unit-length pooled encoder features
  (:mod:`.features`) and ``δ`` is the median of ``1 − f_a · f_b`` over pairs of candidates of the pool (``g = 1``
  everywhere if ``δ = 0``). A window the network sees like one already chosen (another stretch of the same
  confusing lake) loses its score in proportion; one at least as different as a typical pair keeps all of it.
- ``classes``: ``g_i = 1 / (1 + m_c)``, ``m_c`` the chosen windows whose dominant predicted class is ``c``, the
  dominant class of ``i``: the second window of a class counts half, the third a third.
- ``none``: ``g_i = 1`` (the most uncertain windows that do not overlap).

Only a pool of ``max(POOL_MIN, POOL_PER_PICK · n)`` candidates is considered (their features are computed): in
order of priority, each candidate that starts at least half a window away (along rows or columns) from every one
already pooled, so that the pool spans as many places as half-window steps would, each at its best shift of the
finer candidate grid. Ties go to the earlier candidate (scene, then row, then column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geossl.suggest.candidates import Candidates, overlapping
from geossl.suggest.options import Diversity

POOL_MIN = 500
POOL_PER_PICK = 50
#: Candidates of the pool whose pairwise distances give δ.
DELTA_SAMPLE = 512


def pool_size(n: int) -> int:
    """How many of the most uncertain candidates are considered for ``n`` suggestions."""
    return max(POOL_MIN, POOL_PER_PICK * n)


def most_uncertain(candidates: Candidates, n: int, size: int) -> np.ndarray:
    """Indices of the pool (module docstring), highest priority first."""
    blocked = np.zeros(len(candidates), dtype=bool)
    pooled: list[int] = []
    for i in np.argsort(-candidates.priority, kind="stable"):
        if blocked[i]:
            continue
        pooled.append(int(i))
        if len(pooled) == pool_size(n):
            break
        blocked |= overlapping(candidates, int(i), size // 2)  # starts within half a window of i
    return np.array(pooled, dtype=np.int64)


@dataclass(frozen=True)
class Choice:
    """A chosen candidate (index into the pool) and the score it was chosen with."""

    index: int
    score: float


def feature_scale(features: np.ndarray) -> float:
    """``δ``: the median cosine distance between two of the first :data:`DELTA_SAMPLE` candidates."""
    f = features[:DELTA_SAMPLE]
    if len(f) < 2:
        return 0.0
    distance = 1.0 - f @ f.T
    return float(np.median(distance[np.triu_indices(len(f), 1)]))


def choose(pool: Candidates, n: int, size: int, diversity: Diversity, features: np.ndarray | None = None
           ) -> list[Choice]:
    """Up to ``n`` suggestions from ``pool`` (see the module docstring); fewer when fewer fit without overlap."""
    u = pool.priority.astype(np.float64)
    gain = np.ones(len(pool))
    open_ = np.ones(len(pool), dtype=bool)
    delta, nearest = 0.0, np.full(len(pool), np.inf)
    if diversity == "features":
        assert features is not None and len(features) == len(pool)
        delta = feature_scale(features)
    else:
        features = None
    dominant = pool.shares.argmax(axis=1) if len(pool) else np.zeros(0, dtype=int)
    taken = np.zeros(pool.shares.shape[1], dtype=np.int64)
    chosen: list[Choice] = []
    while len(chosen) < n and open_.any():
        score = np.where(open_, u * gain, -np.inf)
        i = int(np.argmax(score))
        chosen.append(Choice(i, float(score[i])))
        open_ &= ~overlapping(pool, i, size)
        if features is not None and delta > 0:
            nearest = np.minimum(nearest, 1.0 - features @ features[i])
            gain = np.minimum(1.0, np.maximum(nearest, 0.0) / delta)
        elif diversity == "classes":
            taken[dominant[i]] += 1
            gain = 1.0 / (1.0 + taken[dominant])
    return chosen
