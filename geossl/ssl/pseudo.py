"""What the pseudo-labelling strategies (fixmatch, unimatch, crossview, dwl) share: the teacher and the refinement.

A step of such a strategy:

1. pseudo-labels of the weak view (probabilities, confidence, labels) from the teacher (:meth:`teach`): the
   model itself (``teacher: student``, each strategy's published recipe) or an EMA of it (``teacher: ema``,
   :mod:`geossl.ssl.teacher`; UniMatch V2), without gradient;
2. each pixel's weight: the strategy's own confidence gate (``1[q ≥ τ]``, DWL's ranking weight);
3. :meth:`refine`: the ``refine`` option's :class:`~geossl.ssl.refine.Refinement` may change labels and weights;
4. the losses use the refined labels and weights (pasted by CutMix like the image).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field
from torch import Tensor

from geossl.models import Segmenter
from geossl.ssl.base import Strategy, StrategyConfig
from geossl.ssl.refine import REFINEMENTS, NoRefineConfig, RefineChoice
from geossl.ssl.teacher import EmaTeacher


class PseudoLabelConfig(StrategyConfig):
    """The options every pseudo-labelling strategy has: who teaches, and how its pseudo-labels are refined."""

    teacher: Literal["student", "ema"] = "student"
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.99
    refine: RefineChoice = NoRefineConfig()


class PseudoLabelStrategy(Strategy):
    """Base of the strategies that learn from pseudo-labels of the weak view (module docstring)."""

    config: PseudoLabelConfig

    def __init__(self, model: Segmenter, config: StrategyConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, config, *args, **kwargs)
        self.teacher = EmaTeacher(model, self.config.ema_decay) if self.config.teacher == "ema" else None
        if self.teacher is not None:
            self.owned["teacher"] = self.teacher
        self.refinement = REFINEMENTS[self.config.refine.name](self.config.refine)

    def teach(self, weak: Tensor, student_logits: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Probabilities, confidences and labels of the weak view, without gradient.

        From the EMA teacher when there is one; else from ``student_logits`` (the model's logits of ``weak``,
        when the step computes them anyway) or a forward of the model (train mode, no gradient).
        """
        if self.teacher is not None:
            return self.pseudo_labels(self.teacher(weak))
        if student_logits is None:
            with torch.no_grad():
                student_logits = self.model(weak)
        return self.pseudo_labels(student_logits)

    def refine(self, weak: Tensor, probs: Tensor, labels: Tensor, conf: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """The refinement's ``(labels, weight)`` (see :meth:`geossl.ssl.refine.Refinement.refine`)."""
        with torch.no_grad():
            return self.refinement.refine(weak, probs, labels, conf, valid, weight.float())

    def after_optimizer_step(self) -> None:
        """The EMA teacher follows the model."""
        if self.teacher is not None:
            self.teacher.update(self.model)
