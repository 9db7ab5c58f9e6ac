"""The common interface of the semi-supervised strategies (one per file in this package).

A strategy gets the :class:`~geossl.models.Segmenter` (the model that is exported) and computes one training
step's loss from a labeled and an unlabeled batch (see :mod:`geossl.data.patches` for the batch keys). Modules
only the strategy trains or keeps (DWL's pseudo head, an EMA teacher) are its own, in :attr:`Strategy.owned`:
the task checkpoints them under ``strategy.`` and they never reach ``model.pt``. Unlabeled batches never carry
labels to a strategy: the task removes the hidden truth before the call.

The task calls :meth:`Strategy.step`, which runs :meth:`Strategy.training_step`; the pseudo-labelling strategies'
base (:mod:`geossl.ssl.pseudo`) takes an unlabeled batch's prior map out there and merges it into the
pseudo-labels (:mod:`geossl.ssl.prior`), so no strategy handles it itself.

Its options (:class:`StrategyConfig`, one subclass per strategy, ``name`` a ``Literal``) are validated once at
the edge and declare the data the strategy needs (:meth:`StrategyConfig.data_spec`) without building anything.

A step's random choices (strong views, CutMix, feature dropout) are drawn from the generator the step is given
(:mod:`geossl.data.rng`: the task makes one per step from the seed, the step and the rank); without one, from
torch's global generator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from geossl.data.normalize import IGNORE
from geossl.data.spec import DataSpec
from geossl.data.views import ViewConfig, cutmix_boxes, feature_dropout, mix_permutation, paste, photometric
from geossl.models import Segmenter
from geossl.ssl.losses import pseudo_labels
from geossl.ssl.prior import PriorTeacherConfig
from geossl.ssl.registry import NamedConfig

Batch = dict[str, Tensor]


@dataclass
class PseudoLabels:
    """What a step did with the unlabeled batch, in the batch's (weak view) frame, for diagnostics.

    ``weight`` is how much each pixel's pseudo-label counted in the loss (0: unused).
    """

    labels: Tensor
    weight: Tensor
    valid: Tensor


@dataclass
class StepOutput:
    """The loss to minimise, its terms (detached, for logs) and the pseudo-labels used."""

    loss: Tensor
    terms: dict[str, Tensor] = field(default_factory=dict)
    pseudo: PseudoLabels | None = None


@dataclass
class StrongView:
    """A strong view of a weak batch: the image, and the CutMix box and source used to build it."""

    image: Tensor
    box: Tensor
    source: Tensor

    def mix(self, t: Tensor) -> Tensor:
        """Paste ``t`` (a per-pixel quantity of the weak batch) the way the image was pasted."""
        return paste(t, t[self.source], self.box)


class StrategyConfig(NamedConfig):
    """A strategy's options; subclasses add ``name: Literal["..."]`` and the strategy's parameters.

    ``makes_pseudo_labels``: whether the strategy learns from pseudo-labels, the ones a prior map can teach.
    """

    makes_pseudo_labels: ClassVar[bool] = False

    def data_spec(self) -> DataSpec:
        """The training data the strategy needs (by default: unlabeled windows, one at a time)."""
        return DataSpec(unlabeled=True)


class Strategy(ABC):
    """Base of every strategy.

    Subclasses set :attr:`Config` (whose ``name`` names the strategy) and implement :meth:`training_step`;
    modules of their own go into :attr:`owned`.
    """

    Config: ClassVar[type[StrategyConfig]]

    def __init__(self, model: Segmenter, config: StrategyConfig, views: ViewConfig | None = None,
                 class_weights: Tensor | None = None, debias_pseudo_labels: bool = False,
                 prior: PriorTeacherConfig | None = None) -> None:
        self.model = model
        self.config = config
        #: The ``prior`` training option: the pseudo-labelling strategies merge a batch's prior map by it.
        self.prior = prior
        #: Modules of the strategy's own (checkpointed as ``strategy.<key>``, never exported).
        self.owned = nn.ModuleDict()
        self.views = (views or ViewConfig()).resolved()
        self.class_weights = class_weights
        self.logit_shift = (None if class_weights is None or not debias_pseudo_labels
                            else -torch.log(class_weights.float().clamp_min(1e-12)))

    def pseudo_labels(self, logits: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The teacher's probabilities, confidences and labels (no gradient), from its logits.

        A model trained with class weights ``w_c`` learns ``p(c|x)·w_c`` up to normalisation: it over-predicts
        the up-weighted (rare) classes. With ``debias_pseudo_labels`` the teacher's logits are shifted by
        ``−log w_c`` so pseudo-labels and confidences estimate ``p(c|x)`` itself, as in the notes, where the
        teacher is trained with plain cross-entropy. Without class weights nothing changes.
        """
        return pseudo_labels(logits, self.logit_shift)

    @property
    def name(self) -> str:
        """The strategy's name (its options' ``name``)."""
        return self.config.name

    def trainable(self) -> list[nn.Parameter]:
        """What the optimizer trains: the model's parameters, then those of :attr:`owned` that need gradients."""
        return [*self.model.parameters(), *(p for p in self.owned.parameters() if p.requires_grad)]

    def supervised_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy on the labeled pixels (class-weighted when the task was given weights)."""
        weight = None if self.class_weights is None else self.class_weights.to(logits.device, torch.float32)
        if not (target != IGNORE).any():  # a batch without labeled pixels: zero, but keep the graph
            return logits.sum() * 0.0
        return F.cross_entropy(logits.float(), target, weight=weight, ignore_index=IGNORE)

    def strong_view(self, weak: Tensor, valid: Tensor, rng: torch.Generator | None = None) -> StrongView:
        """Photometric noise on a copy of the weak batch, then CutMix from another image of the batch."""
        n, _, h, w = weak.shape
        image = photometric(weak, valid, self.views, rng)
        box = cutmix_boxes(n, h, w, self.views, weak.device, rng)
        source = mix_permutation(n, weak.device, rng)
        return StrongView(image=paste(image, image[source], box), box=box, source=source)

    def decode_with_dropout(self, features: list[Tensor], start: int, rates: tuple[float, ...],
                            rng: torch.Generator | None = None) -> tuple[Tensor, list[Tensor]]:
        """Clean logits of all images and, for each rate, logits of images ``start:`` with feature dropout.

        Everything goes through the decoder in ONE pass on the concatenated features (as UniMatch's official
        ``model(x, need_fp=True)``): fewer, larger operations, and the decoder's batch statistics see both.
        """
        streams = [feature_dropout([f[start:] for f in features], p, rng) for p in rates]
        joined = [torch.cat([f, *(s[i] for s in streams)]) for i, f in enumerate(features)]
        logits = self.model.head(self.model.decode(joined))
        n, m = features[0].shape[0], features[0].shape[0] - start
        return logits[:n], [logits[n + j * m : n + (j + 1) * m] for j in range(len(rates))]

    def step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
             rng: torch.Generator | None = None) -> StepOutput:
        """One step as the task runs it: :meth:`training_step` (a base of strategies may prepare around it)."""
        return self.training_step(batch_l, batch_u, step, total_steps, rng)

    @abstractmethod
    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """The loss of one step; ``step`` counts from 0 to ``total_steps``; ``rng`` makes its random choices."""

    def after_optimizer_step(self) -> None:
        """Called after every optimizer step (an EMA teacher follows the model here); nothing by default."""
        return

    def on_train_epoch_end(self) -> None:
        """Called after every training epoch (DWL merges its heads here); nothing by default."""
        return

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint besides the weights of the model and :attr:`owned` (tensors and plain types only)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; nothing by default."""
        return


def split(t: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """``t[:n]``, ``t[n:]``."""
    return t[:n], t[n:]


def no_unlabeled(name: str) -> ValueError:
    """The error of a semi-supervised strategy called without an unlabeled batch."""
    return ValueError(f"strategy {name} needs an unlabeled batch")

