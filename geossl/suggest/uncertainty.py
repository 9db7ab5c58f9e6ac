"""Per-pixel uncertainty of class probabilities ``p`` (``K`` classes), in [0, 1], 1 the most uncertain.

- ``entropy``: ``H(p) / log K = -Σ_k p_k log p_k / log K`` (1 when every class is equally likely);
- ``margin``: ``1 - (p_(1) - p_(2))``, the gap between the two most likely classes taken from 1 (1 when they tie).
"""

from __future__ import annotations

import numpy as np

from geossl.suggest.options import Uncertainty


def uncertainty(prob: np.ndarray, method: Uncertainty) -> np.ndarray:
    """``(K, h, w)`` probabilities → ``(h, w)`` float32 uncertainty in [0, 1] (see the module docstring)."""
    k = prob.shape[0]
    if k < 2:
        return np.zeros(prob.shape[1:], dtype=np.float32)
    p = prob.astype(np.float64)
    out: np.ndarray
    if method == "entropy":
        logs = np.log(np.clip(p, 1e-12, 1.0))
        out = -(p * logs).sum(axis=0) / np.log(k)
    else:
        top2 = np.partition(p, k - 2, axis=0)[k - 2 :]
        out = 1.0 - (top2[1] - top2[0])
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float32)
