"""``prototype``: prototype-based consistency regularisation (seed 003; Xu et al., NeurIPS 2022, "PCR").

Beside the linear head, a prototype head classifies the decoder's features ``z`` (``D`` channels, before the
linear head) by cosine similarity to ``M`` micro-prototypes per class (``K × M × D``, unit vectors)::

    s_c(z) = max_m cos(z, P_cm) / T          (T = 0.1; a class's score is its best micro-prototype)
    p_proto(z) = softmax_c s_c(z)

The pseudo-labels ``ŷ`` and confidences ``q`` come from the linear head of the teacher on the weak view (the
model itself, no gradient, train mode, as in FixMatch; or the EMA teacher, :mod:`geossl.ssl.pseudo`), and the
gate ``1[q ≥ τ]`` may be changed by the ``refine`` option (the weights ``w`` below). The strong view
(photometric noise + CutMix, pseudo-labels and weights pasted with the same box) goes through the network once,
with the labeled images, and feeds both heads::

    L_s  = CE(linear(x_l), y_l)                               (class-weighted like every strategy's)
    L_u  = Σ w·CE(linear(x_s), ŷ) / N_valid                   (FixMatch's term; w = 1[q ≥ τ] unrefined)
    L_pl = Σ w_y·CE(proto(x_l), y_l) / Σ w_y                  (the labeled pixels, same class weights)
    L_pc = Σ w·CE(proto(x_s), ŷ) / N_valid                    (consistency: prototype vs. linear prediction)
    L    = L_s + λ_u·L_u + λ_p·(L_pl + L_pc)

The prototypes are buffers of the strategy's own module (``strategy.prototypes`` in checkpoints, restored by
``--resume``, never in the exported model), never trained by gradient: the prototype terms pull each feature
towards the nearest prototype of its (pseudo-)class and away from the other classes' prototypes, through the
shared network.

Maintenance, after the losses of the step are computed (they use the prototypes the step started with):

- the features of the step are the labeled images' (true labels) and the teacher's weak-view features where
  ``w > 0`` (pseudo-labels), L2-normalised and detached;
- each goes to the most similar initialised micro-prototype of its class; a micro-prototype that received
  features moves to ``P ← normalise(ema·P + (1 − ema)·mean(assigned features))`` (ema = 0.99);
- a micro-prototype is idle at a step where its class has features but it received none; after
  ``reinit_after`` consecutive idle steps it is re-initialised to one of its class's features of the step, drawn at
  random (steps without features of its class do not count). Micro-prototypes start uninitialised (as idle as
  that), so each class's are drawn from its features the first time the class appears.

Choices where the notes leave it open (the official MindSpore release shows the cosine head and the EMA update,
not the training loop or the maintenance):
the prototypes sit on the decoder's features (no projection head, so nothing to train outside the segmentation
network); uninitialised micro-prototypes count as cosine −1 and pixels of a class without an initialised one
are left out of the prototype terms; the labeled term ``L_pl`` anchors the prototypes' classes to true labels;
``reinit_after`` = 20 steps. When the decoder's output is coarser than the image (DeepLabV3+), prototype scores
are upsampled bilinearly like the linear head's logits and labels are resampled (nearest) to the features for
the update. Under DDP the feature sums and counts are summed over the processes and rank 0's prototypes are
broadcast after each update, so every process keeps the same prototypes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from geossl.data.normalize import IGNORE
from geossl.models import Segmenter
from geossl.ssl.base import Batch, PseudoLabels, StepOutput, StrategyConfig, no_unlabeled, split
from geossl.ssl.losses import weighted_ce
from geossl.ssl.thresholds import ThresholdConfig, ThresholdStrategy


class PrototypeConfig(ThresholdConfig):
    """Micro-prototypes per class, cosine temperature, prototype EMA, threshold, loss weights, maintenance."""

    name: Literal["prototype"] = "prototype"
    prototypes_per_class: Annotated[int, Field(ge=1)] = 4
    temperature: Annotated[float, Field(gt=0)] = 0.1
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.99
    weight_unlabeled: Annotated[float, Field(ge=0)] = 1.0
    weight_prototype: Annotated[float, Field(ge=0)] = 1.0
    reinit_after: Annotated[int, Field(ge=1)] = 20


def prototype_logits(features: Tensor, prototypes: Tensor, ready: Tensor, temperature: float) -> Tensor:
    """``max_m cos(z, P_cm) / T`` per class: ``(N, K, h, w)`` from features ``(N, D, h, w)``.

    ``prototypes`` ``(K, M, D)``; ``ready`` ``(K, M)`` marks the initialised ones (the others count as −1).
    """
    z = F.normalize(features.float(), dim=1)
    p = F.normalize(prototypes.float(), dim=-1)
    cos = torch.einsum("ndhw,kmd->nkmhw", z, p)
    cos = cos.masked_fill(~ready[None, :, :, None, None], -1.0)
    return cos.amax(dim=2) / temperature


def assign(feats: Tensor, labels: Tensor, prototypes: Tensor, ready: Tensor) -> Tensor:
    """Flat index ``c·M + m`` of each unit feature's most similar initialised micro-prototype of its class.

    ``feats`` ``(P, D)``, ``labels`` ``(P,)``; −1 where the class has no initialised micro-prototype.
    """
    k, m, _ = prototypes.shape
    cos = (feats @ prototypes.reshape(k * m, -1).T).view(-1, k, m)[torch.arange(len(labels)), labels]
    cos = cos.masked_fill(~ready[labels], -float("inf"))
    best = cos.argmax(dim=1)
    return torch.where(ready[labels].any(dim=1), labels * m + best, -1)


def consistency(proto_logits: Tensor, pseudo: Tensor, weight: Tensor, valid: Tensor) -> Tensor:
    """``L_pc = Σ CE(proto, ŷ)·w / N_valid``: the prototype prediction trained on the linear head's labels.

    ``w``: the pseudo-label's weight (``1[q ≥ τ]``, or the refinement's), 0 where invalid or where its class
    has no initialised micro-prototype.
    """
    return weighted_ce(proto_logits, pseudo, weight.float(), valid.sum())


def ema_step(prototypes: Tensor, sums: Tensor, counts: Tensor, momentum: float) -> Tensor:
    """``normalise(ema·P + (1 − ema)·sums/counts)`` where ``counts > 0``; ``P`` elsewhere. Shapes ``(K, M, …)``."""
    mean = sums / counts.clamp_min(1)[..., None]
    moved = F.normalize(momentum * prototypes + (1 - momentum) * mean, dim=-1)
    return torch.where((counts > 0)[..., None], moved, prototypes)


class PrototypeHead(nn.Module):
    """``K × M`` unit micro-prototypes of ``D`` features (buffers), their idle counters and initialised flags."""

    def __init__(self, num_classes: int, per_class: int, dim: int, temperature: float = 0.1, ema: float = 0.99,
                 reinit_after: int = 20) -> None:
        super().__init__()
        self.temperature, self.ema, self.reinit_after = temperature, ema, reinit_after
        self.register_buffer("prototypes", torch.zeros(num_classes, per_class, dim))
        self.register_buffer("ready", torch.zeros(num_classes, per_class, dtype=torch.bool))
        self.register_buffer("idle", torch.full((num_classes, per_class), reinit_after, dtype=torch.long))

    prototypes: Tensor
    ready: Tensor
    idle: Tensor

    def forward(self, features: Tensor, size: tuple[int, int] | None = None) -> Tensor:
        """Prototype logits ``(N, K, H, W)``, upsampled bilinearly to ``size`` when given and different."""
        with torch.autocast(features.device.type, enabled=False):
            logits = prototype_logits(features, self.prototypes, self.ready, self.temperature)
        if size is not None and tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits

    def known(self, labels: Tensor) -> Tensor:
        """True where a label's class has an initialised micro-prototype (False for IGNORE)."""
        return self.ready.any(dim=1)[labels.clamp_min(0)] & (labels != IGNORE)

    @torch.no_grad()
    def update(self, features: Tensor, labels: Tensor, rng: torch.Generator | None = None) -> int:
        """One maintenance step from features ``(N, D, h, w)`` and labels ``(N, h, w)`` (IGNORE: unused).

        Returns how many micro-prototypes were (re-)initialised.
        """
        keep = labels != IGNORE
        feats = F.normalize(features.float().permute(0, 2, 3, 1)[keep], dim=1)
        lab = labels[keep]
        k, m, d = self.prototypes.shape
        idx = assign(feats, lab, self.prototypes, self.ready)
        hit = idx >= 0
        sums = torch.zeros(k * m, d, device=feats.device).index_add_(0, idx[hit], feats[hit])
        counts = torch.bincount(idx[hit], minlength=k * m).float()
        present = torch.bincount(lab, minlength=k).float()
        _all_reduce(sums, counts, present)
        counts = counts.view(k, m)
        self.prototypes.copy_(ema_step(self.prototypes, sums.view(k, m, d), counts, self.ema))
        idle = torch.where(counts > 0, 0, self.idle + 1)
        self.idle.copy_(torch.where((present > 0)[:, None], idle, self.idle))
        drawn = self._reinitialise(feats, lab, (self.idle >= self.reinit_after) & (present > 0)[:, None], rng)
        _broadcast(self.prototypes, self.ready, self.idle)
        return drawn

    def _reinitialise(self, feats: Tensor, lab: Tensor, stale: Tensor, rng: torch.Generator | None) -> int:
        """The ``stale`` ``(K, M)`` micro-prototypes take random features of their class (when it has some here)."""
        drawn = 0
        for c in stale.any(dim=1).nonzero()[:, 0].tolist():
            rows = (lab == c).nonzero()[:, 0]
            if len(rows) == 0:  # under DDP: features of the class on other processes only
                continue
            which = stale[c].nonzero()[:, 0]
            pick = rows[torch.randint(len(rows), (len(which),), generator=rng).to(rows.device)]
            self.prototypes[c, which] = feats[pick]
            self.ready[c, which] = True
            self.idle[c, which] = 0
            drawn += len(which)
        return drawn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce(*tensors: Tensor) -> None:
    """Sum over the processes (DDP); nothing in a single process."""
    if _distributed():
        for t in tensors:
            dist.all_reduce(t)


def _broadcast(*tensors: Tensor) -> None:
    """Rank 0's values to every process (DDP); nothing in a single process."""
    if _distributed():
        for t in tensors:
            dist.broadcast(t, src=0)


def feature_dim(model: Segmenter) -> int:
    """Channels of the decoder's output: the input of the linear head's convolution."""
    conv = next(mod for mod in model.net.segmentation_head.modules() if isinstance(mod, nn.Conv2d))
    return conv.in_channels


def resize_labels(labels: Tensor, size: tuple[int, int]) -> Tensor:
    """Labels ``(N, H, W)`` resampled (nearest) to ``size``; unchanged when already that size."""
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()


class Prototype(ThresholdStrategy):
    """Linear head + cosine micro-prototype head, kept consistent on strong views (module docstring)."""

    Config = PrototypeConfig
    config: PrototypeConfig

    def __init__(self, model: Segmenter, config: StrategyConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, config, *args, **kwargs)
        cfg = self.config
        #: The prototype head: the strategy's own module (``strategy.prototypes`` in checkpoints, not exported).
        self.head = PrototypeHead(model.config.num_classes, cfg.prototypes_per_class, feature_dim(model),
                                  cfg.temperature, cfg.ema, cfg.reinit_after)
        self.owned["prototypes"] = self.head

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``L_s + λ_u·L_u + λ_p·(L_pl + L_pc)``, then one prototype maintenance step."""
        if batch_u is None:
            raise no_unlabeled(self.name)
        cfg, model = self.config, self.model
        x_w, valid = batch_u["image"], batch_u["valid"]
        decoded_w, (probs, conf, labels) = self.teach_with_features(x_w)
        labels, weight = self.refine(x_w, probs, labels, conf, valid, self.thresholds.gate(conf, labels, valid))
        strong = self.strong_view(x_w, valid, rng)
        x_l, y_l = batch_l["image"], batch_l["mask"]
        decoded = model.decode(model.features(torch.cat([x_l, strong.image])))
        logits_l, logits_s = split(model.head(decoded), x_l.shape[0])
        proto_l, proto_s = split(self.head(decoded, (x_w.shape[-2], x_w.shape[-1])), x_l.shape[0])

        v, target, w_s = strong.mix(valid), strong.mix(labels), strong.mix(weight)
        loss_s = self.supervised_loss(logits_l, y_l)
        loss_u = weighted_ce(logits_s, target, w_s, v.sum())
        loss_pl = self.prototype_supervised_loss(proto_l, y_l)
        loss_pc = consistency(proto_s, target, w_s * self.head.known(target), v)
        loss = loss_s + cfg.weight_unlabeled * loss_u + cfg.weight_prototype * (loss_pl + loss_pc)

        size = (decoded.shape[-2], decoded.shape[-1])
        pseudo = torch.where((weight > 0) & valid, labels, IGNORE)
        drawn = self.head.update(torch.cat([decoded[: x_l.shape[0]].detach(), decoded_w]),
                                 resize_labels(torch.cat([y_l, pseudo]), size), rng)
        terms = {"loss_s": loss_s, "loss_u": loss_u, "loss_proto_l": loss_pl, "loss_proto_u": loss_pc}
        terms = {k: t.detach() for k, t in terms.items()} | {"prototypes_drawn": torch.tensor(float(drawn))}
        return StepOutput(loss=loss, terms=terms, pseudo=PseudoLabels(labels=labels, weight=weight, valid=valid))

    @torch.no_grad()
    def teach_with_features(self, weak: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        """The teacher's decoder features of the weak view and its pseudo-labels (:meth:`teach`'s triple).

        The teacher is the EMA model with ``teacher: ema`` (its features then update the prototypes, as in a mean
        teacher), else the model itself (train mode, no gradient).
        """
        net = self.teacher.net if self.teacher is not None else self.model
        assert isinstance(net, Segmenter)
        decoded = net.decode(net.features(weak))
        return decoded, self.pseudo_labels(net.head(decoded))

    def prototype_supervised_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """``Σ w_y·CE(proto, y) / Σ w_y`` over labeled pixels whose class has an initialised micro-prototype.

        ``w_y`` are the class weights (1 without them), and the denominator counts every labeled pixel, as
        :meth:`~geossl.ssl.base.Strategy.supervised_loss` does.
        """
        labeled = target != IGNORE
        w = (torch.ones(logits.shape[1], device=logits.device) if self.class_weights is None
             else self.class_weights.to(logits.device, torch.float32))[target.clamp_min(0)] * labeled
        return weighted_ce(logits, target, w * self.head.known(target), w.sum())
