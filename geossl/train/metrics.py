"""Segmentation metrics from a confusion matrix, and the torchmetrics states that collect them (DDP-safe).

Confusion matrix ``C[t, p]`` = pixels of true class ``t`` predicted as ``p``. Per class
``IoU_c = C[c,c] / (Σ_p C[c,p] + Σ_t C[t,c] − C[c,c])``, undefined (NaN) for a class that is neither in the
truth nor in the prediction; macro mIoU is the mean of the defined ones (rare classes weigh as much as common
ones). Overall accuracy ``OA = Σ_c C[c,c] / Σ C``; Cohen's kappa ``(OA − p_e) / (1 − p_e)`` with
``p_e = Σ_c (row_c · col_c) / (Σ C)²``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric

from geossl.data.normalize import IGNORE


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``(K, K)`` int64 counts over the pixels whose target is not :data:`IGNORE`."""
    keep = target != IGNORE
    t, p = target[keep].long(), pred[keep].long()
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(num_classes, num_classes)


def segmentation_metrics(cm: np.ndarray | Tensor, names: list[str]) -> dict[str, Any]:
    """``miou``, ``iou`` (per class name, None when undefined), ``oa``, ``kappa``, ``pixels`` and the matrix."""
    c = np.asarray(cm.cpu() if isinstance(cm, Tensor) else cm, dtype=np.float64)
    tp = np.diag(c)
    rows, cols, total = c.sum(1), c.sum(0), c.sum()
    union = rows + cols - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    defined = iou[~np.isnan(iou)]
    oa = float(tp.sum() / total) if total else math.nan
    pe = float((rows * cols).sum() / total**2) if total else math.nan
    kappa = (oa - pe) / (1 - pe) if total and pe < 1 else math.nan
    return {
        "miou": float(defined.mean()) if defined.size else math.nan,
        "iou": {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)},
        "oa": oa, "kappa": float(kappa), "pixels": int(total),
        "confusion_matrix": c.astype(np.int64).tolist(),
    }


class ConfusionMatrix(Metric):
    """Sums confusion matrices over batches (and over ranks in a distributed run)."""

    full_state_update = False
    matrix: Tensor  # a metric state (add_state)

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.add_state("matrix", default=torch.zeros(num_classes, num_classes, dtype=torch.long),
                       dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor) -> None:
        """Add a batch of predicted and true class indices."""
        self.matrix += confusion_matrix(pred, target, self.num_classes).to(self.matrix.device)

    def compute(self) -> Tensor:
        """The summed matrix."""
        return self.matrix


class PseudoLabelStats(Metric):
    """What the pseudo-labels of an epoch were (diagnostics only).

    Share of valid unlabeled pixels used (weight > 0), mean weight, per-class counts of used pixels, and —
    where the unlabeled area has (hidden) truth — the accuracy of the used pseudo-labels against it.
    """

    full_state_update = False
    # metric states (add_state)
    valid: Tensor
    used: Tensor
    weight: Tensor
    judged: Tensor
    correct: Tensor
    counts: Tensor

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        for name in ("valid", "used", "weight", "judged", "correct"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, labels: Tensor, weight: Tensor, valid: Tensor, truth: Tensor | None = None) -> None:
        """Add one step's pseudo-labels (and the hidden truth of the same pixels, when known)."""
        used = (weight > 0) & valid
        self.valid += valid.sum()
        self.used += used.sum()
        self.weight += weight[valid].double().sum()
        self.counts += torch.bincount(labels[used], minlength=self.num_classes).to(self.counts.device)
        if truth is not None:
            judged = used & (truth != IGNORE)
            self.judged += judged.sum()
            self.correct += (judged & (labels == truth)).sum()

    def compute(self) -> dict[str, Any]:
        """``used_share``, ``mean_weight``, ``accuracy`` (NaN without truth) and ``counts``."""
        valid = float(self.valid)
        return {
            "used_share": float(self.used) / valid if valid else math.nan,
            "mean_weight": float(self.weight) / valid if valid else math.nan,
            "accuracy": float(self.correct) / float(self.judged) if float(self.judged) else math.nan,
            "counts": self.counts.tolist(),
        }
