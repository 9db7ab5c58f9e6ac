"""Which train regions keep their labels: a seeded random draw, or one that covers every class first.

Both ingest (``splits.blocks.labeled_selection``) and training (``label_selection`` with ``label_fraction``)
choose ``n`` labeled regions from candidates given in a seeded random order.

``random`` takes the first ``n`` candidates. ``cover_classes`` mimics an analyst who makes sure every class
has examples: while some class present among the candidates has no labeled region yet, it takes the candidate
that adds the most such classes (ties: the most pixels of the added classes, each class's pixels divided by
its total over all candidates, so rare classes count as much as common ones; then the seeded order); once
every present class is covered, or ``n`` regions could not cover them all, the rest follow the seeded order.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

LabeledSelection = Literal["random", "cover_classes"]


def choose_labeled(counts: np.ndarray, n: int, policy: LabeledSelection = "random") -> list[int]:
    """Indices of the ``n`` candidates to label; ``counts`` is (candidates, classes) in the seeded order."""
    counts = np.asarray(counts, dtype=np.float64)
    n = min(n, len(counts))
    if policy == "random":
        return list(range(n))
    present = counts > 0
    total = counts.sum(axis=0)
    rarity = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    covered = np.zeros(counts.shape[1], dtype=bool)
    chosen: list[int] = []
    while len(chosen) < n:
        left = [i for i in range(len(counts)) if i not in chosen]
        new = present[left] & ~covered
        gains = new.sum(axis=1)
        if gains.max() == 0:
            break
        score = np.where(new, counts[left] * rarity, 0.0).sum(axis=1)
        best = max(range(len(left)), key=lambda j: (gains[j], score[j], -j))
        chosen.append(left[best])
        covered |= present[left[best]]
    chosen += [i for i in range(len(counts)) if i not in chosen][: n - len(chosen)]
    return chosen
