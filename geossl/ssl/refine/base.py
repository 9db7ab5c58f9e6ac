"""The common interface of the pseudo-label refinements (one per file in this package).

A refinement runs after a strategy has made its pseudo-labels from the weak view and before they are pasted into
the strong views: it may change each pixel's label and says how much each pixel counts in the unlabeled loss.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from torch import Tensor

from geossl.config import StrictModel


class Refinement(ABC):
    """Base of every refinement: subclasses set :attr:`name` and :attr:`Config` and implement :meth:`refine`."""

    name: ClassVar[str]
    Config: ClassVar[type[StrictModel]]

    def __init__(self, config: StrictModel) -> None:
        self.config = config

    @abstractmethod
    def refine(self, image_weak: Tensor, probs: Tensor, labels: Tensor, confidence: Tensor,
               valid: Tensor) -> tuple[Tensor, Tensor]:
        """Refined ``(labels, weight)``, both ``(N, H, W)``, from one unlabeled batch's weak view.

        ``image_weak`` is ``(N, C, H, W)`` (normalised bands), ``probs`` the teacher's ``(N, K, H, W)``
        probabilities, ``labels``/``confidence`` their argmax/max, ``valid`` the pixels with data. ``weight`` is
        each pixel's weight in the unlabeled loss (0: ignored); it is 0 wherever ``valid`` is False.
        """
