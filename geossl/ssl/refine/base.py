"""The interface of pseudo-label refinements: a step's pseudo-labels in, better labels and weights out.

A pseudo-labelling strategy (:class:`geossl.ssl.pseudo.PseudoLabelStrategy`) makes pseudo-labels from the weak
view, gives each pixel its own weight (its confidence gate: ``1[q ≥ τ]``, or DWL's ranking weight), and hands
all of it to its refinement before the loss; the loss then uses the labels and weights that come back, in place
of its own. Everything is in the weak view's frame; CutMix pastes the refined labels and weights afterwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor

from geossl.ssl.registry import NamedConfig


class RefineConfig(NamedConfig):
    """A refinement's options; subclasses add ``name: Literal["..."]`` and their parameters."""


class Refinement(ABC):
    """Base of every refinement: subclasses set :attr:`Config` and implement :meth:`refine`."""

    Config: ClassVar[type[RefineConfig]]

    def __init__(self, config: RefineConfig) -> None:
        self.config = config

    @abstractmethod
    def refine(self, image_weak: Tensor, probs: Tensor, labels: Tensor, confidence: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """Refined ``(labels, weight)`` of a batch of weak views, without gradient.

        ``image_weak`` ``(N, C, H, W)``: the normalised weak view. ``probs`` ``(N, K, H, W)``: the teacher's
        class probabilities; ``labels`` (long) and ``confidence`` ``(N, H, W)``: their argmax and max.
        ``valid`` ``(N, H, W)`` bool: pixels with data. ``weight`` ``(N, H, W)`` float in ``[0, 1]``: how much
        the strategy would count each pixel's label (0: not used; the strategy's own confidence gate).
        Returns labels (long, ``0..K-1`` where weight > 0) and weights (float in ``[0, 1]``, 0 outside ``valid``)
        of the same shape.
        """
