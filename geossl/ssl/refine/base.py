"""The interface of pseudo-label refinements: a step's pseudo-labels in, better labels and weights out.

A pseudo-labelling strategy makes pseudo-labels from the weak view, gives each pixel its own weight (its
confidence gate ``1[q ≥ τ]``, or DWL's ranking weight) and hands all of it to its refinement before the loss;
the loss then uses the labels and weights that come back. Everything is in the weak view's frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import ConfigDict
from torch import Tensor

from geossl.config import StrictModel


class RefineConfig(StrictModel):
    """A refinement's options; subclasses add ``name: Literal["..."]`` and their parameters."""

    model_config = ConfigDict(frozen=True)

    name: str


class Refinement(ABC):
    """Base of every refinement: subclasses set :attr:`Config` and implement :meth:`refine`."""

    Config: ClassVar[type[RefineConfig]]

    def __init__(self, config: RefineConfig) -> None:
        self.config = config

    @abstractmethod
    def refine(self, image_weak: Tensor, probs: Tensor, labels: Tensor, confidence: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """Refined ``(labels, weight)`` ``(N, H, W)`` of a batch of weak views, without gradient.

        ``image_weak`` ``(N, C, H, W)``: the normalised weak view; ``probs`` ``(N, K, H, W)``: the teacher's
        probabilities; ``labels``, ``confidence``: their argmax and max; ``valid``: pixels with data;
        ``weight``: how much the strategy would count each pixel (0: not used). The weights returned are 0
        outside ``valid``.
        """
