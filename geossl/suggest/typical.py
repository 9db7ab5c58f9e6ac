"""Typical windows (``--ranking typical``): the most representative of each large group of look-alike windows.

The groups are those of the unlabeled windows that no labeled window belongs to yet.

This is the low-budget rule of TypiClust (Hacohen, Dekel and Weinshall, ICML 2022). With few labels the model's
uncertainty is mostly its own noise, and the most uncertain windows are the odd ones: mixed ground, scene edges,
the ambiguous borders of coarse reference labels. Typical windows of the parts of the scene that the labels do not
cover teach a weak model more. In order:

1. Every candidate window and every window of the labeled area gets its unit-length pooled encoder features
   (:mod:`.features`). At most :data:`MAX_WINDOWS` candidates are kept, evenly spaced in scene order.
2. k-means (:func:`kmeans`) groups them into ``K = min(L + n, MAX_CLUSTERS)`` clusters, ``L`` being the
   labeled windows and ``n`` the suggestions asked for.
3. The clusters that hold no labeled window are taken largest first. Each gives its most typical candidate
   that shares no pixel with a window already chosen. Typicality is

       t_i = 1 / mean_j ||f_i − f_j||, over the min(TYPICALITY_NEIGHBOURS, |cluster| − 1) nearest candidates
       j of i's cluster.

   When fewer than ``n`` uncovered clusters exist, the covered ones follow, largest first.

A suggestion's ``score`` is its cluster's share of the candidates, 0 for a cluster that a labeled window
already covers, so scores never increase with rank.
"""

from __future__ import annotations

import numpy as np

from geossl.suggest.candidates import Candidates, overlapping
from geossl.suggest.select import Choice

#: Candidates clustered at most (evenly spaced in scene order beyond it), to bound the k-means cost.
MAX_WINDOWS = 10_000
#: Clusters at most, whatever the number of labeled windows.
MAX_CLUSTERS = 500
#: Neighbours whose mean distance defines a window's typicality (TypiClust's 20).
TYPICALITY_NEIGHBOURS = 20
KMEANS_ITERATIONS = 50


def subsample(n_candidates: int) -> np.ndarray:
    """Indices of the candidates that are clustered: all of them, or :data:`MAX_WINDOWS` evenly spaced."""
    if n_candidates <= MAX_WINDOWS:
        return np.arange(n_candidates)
    return np.unique(np.linspace(0, n_candidates - 1, MAX_WINDOWS).round().astype(int))


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Cluster labels of the rows of ``x``: k-means++ seeding, then Lloyd iterations until nothing moves."""
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centres = [x[rng.integers(len(x))]]
    nearest = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = rng.choice(len(x), p=nearest / total) if total > 0 else rng.integers(len(x))
        centres.append(x[pick])
        nearest = np.minimum(nearest, ((x - x[pick]) ** 2).sum(axis=1))
    c = np.stack(centres)
    labels = np.full(len(x), -1)
    norms = (x**2).sum(axis=1)[:, None]
    for _ in range(KMEANS_ITERATIONS):
        distance = norms - 2 * x @ c.T + (c**2).sum(axis=1)[None, :]
        new = distance.argmin(axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(axis=0)
    return labels


def typicality(x: np.ndarray) -> np.ndarray:
    """``t_i`` of each row of ``x`` (one cluster's features) against its nearest neighbours in ``x``."""
    if len(x) < 2:
        return np.ones(len(x))
    distance = np.sqrt(np.maximum((x**2).sum(1)[:, None] - 2 * x @ x.T + (x**2).sum(1)[None, :], 0.0))
    m = min(TYPICALITY_NEIGHBOURS, len(x) - 1)
    nearest = np.sort(distance, axis=1)[:, 1 : m + 1]  # column 0 is the window itself
    t: np.ndarray = 1.0 / np.maximum(nearest.mean(axis=1), 1e-12)
    return t


def choose_typical(pool: Candidates, features: np.ndarray, labeled: np.ndarray, n: int, size: int
                   ) -> list[Choice]:
    """Up to ``n`` suggestions from ``pool`` (its ``features``; ``labeled``: the labeled windows' features)."""
    k = min(len(labeled) + n, MAX_CLUSTERS, len(pool) + len(labeled))
    both = np.concatenate([features, labeled]) if len(labeled) else features  # no labeled window fits: (0, 0)
    labels = kmeans(both.astype(np.float64), k)
    cand, covered = labels[: len(pool)], set(labels[len(pool):].tolist())
    sizes = np.bincount(cand, minlength=k)
    order = sorted((c for c in range(k) if sizes[c]), key=lambda c: (c in covered, -sizes[c], c))
    open_ = np.ones(len(pool), dtype=bool)
    chosen: list[Choice] = []
    for c in order:
        if len(chosen) == n or not open_.any():
            break
        members = np.flatnonzero(cand == c)
        t = typicality(features[members].astype(np.float64))
        for i in members[np.argsort(-t, kind="stable")]:
            if open_[i]:
                chosen.append(Choice(int(i), 0.0 if c in covered else float(sizes[c] / len(pool))))
                open_ &= ~overlapping(pool, int(i), size)
                break
    return chosen
