"""``none``: the pseudo-labels as the teacher made them."""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from geossl.ssl.refine.base import RefineConfig, Refinement


class NoRefineConfig(RefineConfig):
    """No parameters."""

    name: Literal["none"] = "none"


class NoRefinement(Refinement):
    """Leaves labels and weights unchanged."""

    Config = NoRefineConfig

    def refine(self, image_weak: Tensor, probs: Tensor, labels: Tensor, confidence: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """``(labels, weight)`` as given."""
        return labels, weight
