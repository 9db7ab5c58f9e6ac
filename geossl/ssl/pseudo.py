"""What the pseudo-labelling strategies (fixmatch, unimatch, crossview, dwl) share: the teacher and the refinement.

A step of such a strategy:

1. pseudo-labels of the weak view (probabilities, confidence, labels) from the teacher (:meth:`teach`): the
   model itself (``teacher: student``, each strategy's published recipe) or an EMA of it (``teacher: ema``,
   :mod:`geossl.ssl.teacher`; UniMatch V2), without gradient;
2. each pixel's weight: the strategy's own confidence gate (``1[q ≥ τ]``, DWL's ranking weight);
3. :meth:`refine`: the ``refine`` option's :class:`~geossl.ssl.refine.Refinement` may change labels and weights;
4. with the ``prior`` training option and an unlabeled batch carrying a prior map (``prior``), :meth:`refine`
   merges the prior into the refined labels and weights (:mod:`geossl.ssl.prior`); :meth:`step` takes the map
   out of the batch, so the strategy's own step never sees it;
5. the losses use the refined labels and weights (pasted by CutMix like the image).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from torch import Tensor

from geossl.models import Segmenter
from geossl.ssl.base import Batch, StepOutput, Strategy, StrategyConfig
from geossl.ssl.prior import PriorStep
from geossl.ssl.refine import REFINEMENTS, NoRefineConfig, RefineChoice
from geossl.ssl.teacher import EmaTeacher


class PseudoLabelConfig(StrategyConfig):
    """The options every pseudo-labelling strategy has: who teaches, and how its pseudo-labels are refined."""

    makes_pseudo_labels: ClassVar[bool] = True

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
        #: The prior of the step being run (set by :meth:`step`, read by :meth:`refine`).
        self.current_prior: PriorStep | None = None

    def step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
             rng: torch.Generator | None = None) -> StepOutput:
        """:meth:`training_step`, the unlabeled batch's prior map (if any) set aside for :meth:`refine`.

        Adds the terms ``prior_weight`` (β(t)) and ``prior_share`` (the share of valid unlabeled pixels the
        prior taught) when the prior was merged.
        """
        prior = None if batch_u is None else batch_u.get("prior")
        if batch_u is not None and prior is not None:
            batch_u = {k: v for k, v in batch_u.items() if k != "prior"}
        if prior is None or self.prior is None or self.prior.use == "off":
            return self.training_step(batch_l, batch_u, step, total_steps, rng)
        self.current_prior = PriorStep(prior, self.prior.beta(step, total_steps), self.prior.threshold)
        try:
            out = self.training_step(batch_l, batch_u, step, total_steps, rng)
        finally:
            merged, self.current_prior = self.current_prior, None
        if merged.taught_share is not None:
            out.terms |= {"prior_weight": torch.tensor(merged.beta), "prior_share": merged.taught_share.detach()}
        return out

    def teach(self, weak: Tensor, student_logits: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Probabilities, confidences and labels of the weak view, without gradient.

        From the EMA teacher when there is one; else from ``student_logits`` (the model's logits of ``weak`` from
        a joint forward with the labeled batch, when the step computes them anyway) or a forward of the model in
        eval mode without gradient: batch-norm uses its running statistics and a batch of unlabeled windows alone
        does not update them (as UniMatch's eval-mode teacher forward of its mixed batch).
        """
        if self.teacher is not None:
            return self.pseudo_labels(self.teacher(weak))
        if student_logits is None:
            training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad():
                    student_logits = self.model(weak)
            finally:
                self.model.train(training)
        return self.pseudo_labels(student_logits)

    def refine(self, weak: Tensor, probs: Tensor, labels: Tensor, conf: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """The refinement's ``(labels, weight)`` (:meth:`geossl.ssl.refine.Refinement.refine`), then the prior's."""
        with torch.no_grad():
            labels, weight = self.refinement.refine(weak, probs, labels, conf, valid, weight.float())
            if self.current_prior is not None:
                labels, weight = self.current_prior.merge(labels, weight, conf, valid)
            return labels, weight

    def after_optimizer_step(self) -> None:
        """The EMA teacher follows the model."""
        if self.teacher is not None:
            self.teacher.update(self.model)
