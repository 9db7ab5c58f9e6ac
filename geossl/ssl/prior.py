"""A prior map as a second, weaker teacher that the model's own confident pseudo-labels override.

Schedule, for training progress ``t`` (0 at the first step, 1 at the last):

* the prior's weight is ``β(t) = β₀ · max(0, 1 − t / t_end)``: it decays linearly from ``β₀`` to 0 at
  ``t_end`` (half of training by default) and stays 0 after;
* where the model is confident (``max p ≥ threshold``) its own label is the target, with weight 1, whatever
  the prior says;
* elsewhere the prior's class is the target, with weight ``β(t)``, where the prior has one;
* pixels with a true label, and pixels with neither a confident prediction nor a prior, get weight 0.

The targets and weights feed :func:`geossl.ssl.losses.weighted_ce`, like every other pseudo-label term.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from geossl.data.normalize import IGNORE


@dataclass(frozen=True)
class PriorSchedule:
    """How strongly the prior teaches, and when the model's own labels take over."""

    beta0: float = 0.5
    t_end: float = 0.5
    threshold: float = 0.95

    def __post_init__(self) -> None:
        if not (self.beta0 >= 0 and 0 < self.t_end <= 1 and 0 < self.threshold <= 1):
            raise ValueError(f"bad prior schedule {self}: need beta0 >= 0, 0 < t_end <= 1, 0 < threshold <= 1")

    def beta(self, t: float) -> float:
        """The prior's weight at training progress ``t`` in [0, 1]."""
        return self.beta0 * max(0.0, 1.0 - t / self.t_end)


def prior_targets(conf: Tensor, labels: Tensor, prior: Tensor, true_labels: Tensor, t: float,
                  schedule: PriorSchedule) -> tuple[Tensor, Tensor]:
    """Targets ``(N, H, W)`` (class indexes, ``IGNORE`` where none) and weights of the prior-teacher term.

    ``conf`` and ``labels`` are the model's pseudo-label confidence and class ``(N, H, W)``; ``prior`` is the
    prior's class index per pixel (``IGNORE`` where it has none); ``true_labels`` the batch's labels
    (``IGNORE`` where unlabeled). See the module docstring for the schedule.
    """
    confident = conf >= schedule.threshold
    has_prior = prior != IGNORE
    unlabeled = true_labels == IGNORE
    target = torch.where(confident, labels, torch.where(has_prior, prior, torch.full_like(prior, IGNORE)))
    prior_weight = has_prior.to(conf.dtype) * schedule.beta(t)
    weight = torch.where(confident, torch.ones_like(prior_weight), prior_weight) * unlabeled.to(conf.dtype)
    target = torch.where(weight > 0, target, torch.full_like(target, IGNORE))
    return target, weight
