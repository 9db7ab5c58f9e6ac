"""The per-pixel maths shared by the strategies: pseudo-labels, thresholded cross-entropy, soft consistency.

Every loss here is a masked sum divided by an explicit denominator, so each strategy states what it averages
over (UniMatch: all valid pixels, not only the confident ones).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def pseudo_labels(logits: Tensor, logit_shift: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Probabilities ``(N, K, H, W)``, confidence ``max p`` and label ``argmax p`` ``(N, H, W)``.

    All without gradient. ``logit_shift`` (``(K,)``) is added to the logits first (see
    :meth:`geossl.ssl.base.Strategy.pseudo_labels`).
    """
    logits = logits.detach().float()
    if logit_shift is not None:
        logits = logits + logit_shift.to(logits.device, logits.dtype)[None, :, None, None]
    probs = logits.softmax(dim=1)
    conf, labels = probs.max(dim=1)
    return probs, conf, labels


def weighted_ce(logits: Tensor, target: Tensor, weight: Tensor, denominator: Tensor | float) -> Tensor:
    """``Σ weight · CE(logits, target) / denominator`` over pixels.

    Weight 0 drops a pixel (its target may then be anything in ``0..K-1``).
    """
    ce = F.cross_entropy(logits.float(), target.clamp_min(0), reduction="none")
    den = torch.as_tensor(denominator, dtype=ce.dtype, device=ce.device).clamp_min(1.0)
    return (ce * weight).sum() / den


def soft_consistency(teacher_probs: Tensor, student_logits: Tensor, weight: Tensor,
                     denominator: Tensor | float) -> Tensor:
    """``Σ weight · KL(teacher ‖ student) / denominator`` over pixels.

    ``KL = Σ_k p_t (log p_t − log p_s)`` is the soft-target cross-entropy minus the teacher's entropy: its
    gradient is that of cross-entropy against the teacher's distribution, and it is exactly zero where the
    two distributions agree.
    """
    log_s = F.log_softmax(student_logits.float(), dim=1)
    p_t = teacher_probs.detach().float()
    kl = (p_t * (torch.log(p_t.clamp_min(1e-12)) - log_s)).sum(dim=1)
    den = torch.as_tensor(denominator, dtype=kl.dtype, device=kl.device).clamp_min(1.0)
    return (kl * weight).sum() / den


def class_thresholds(ema: Tensor, tau: float) -> Tensor:
    """Class-adaptive thresholds ``τ_c = min(τ, ema_c)`` (``ema_c``: running mean max-confidence of class c)."""
    return ema.clamp(max=tau)


def update_confidence_ema(ema: Tensor, conf: Tensor, labels: Tensor, valid: Tensor, momentum: float) -> Tensor:
    """``ema_c ← m·ema_c + (1−m)·mean(conf | label = c)`` for every class present among the valid pixels."""
    k = ema.numel()
    lab, cf = labels[valid], conf[valid].to(ema.dtype)
    total = torch.zeros(k, dtype=ema.dtype, device=ema.device).index_add_(0, lab, cf)
    count = torch.bincount(lab, minlength=k).to(ema.dtype)
    present = count > 0
    mean = total / count.clamp_min(1)
    return torch.where(present, momentum * ema + (1 - momentum) * mean, ema)
