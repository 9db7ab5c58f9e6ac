"""Class weights from the labeled pixels: training's balanced loss and the class-balanced ranking of suggestions.

``balanced``: ``w_c ∝ 1/sqrt(f_c)``, ``f_c`` the class's share of the labeled split's pixels, normalised so the
labeled pixels' mean weight is 1; a class without labeled pixels gets the largest weight of the others.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

#: How classes are weighted: not at all, or :func:`balanced_weights`.
ClassWeighting = Literal["none", "balanced"]


def balanced_weights(counts: np.ndarray) -> np.ndarray:
    """``(K,)`` float64 weights of the classes with ``counts`` labeled pixels (module docstring)."""
    counts = np.asarray(counts, dtype=np.float64)
    freq = counts / counts.sum()
    w = np.where(counts > 0, 1 / np.sqrt(np.where(counts > 0, freq, 1)), 0.0)
    w = np.where(counts > 0, w, w.max())
    return w / float((w * freq).sum())
