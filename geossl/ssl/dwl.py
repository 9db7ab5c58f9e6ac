"""``dwl``: decouple and weight (Huang, Shi, Xiong, Zhu, ISPRS J. P&RS 212, 2024; official code RS-DWL).

Decoupled heads: labeled data trains the main head; pseudo-labels come from the main head on the weak view (no
gradient, train mode) and train only the pseudo head, on the strong view (with CutMix). The pseudo head is the
strategy's own module (a copy of the main head at the start, ``strategy.pseudo_head`` in checkpoints): it is
not part of the exported model. Ranking weights for the long tail:

- class memory: for each class c a FIFO of the last ``memory_batches`` batches of the probability of class c at
  pixels whose pseudo-label is c (probabilities downsampled to ``memory_size``² by nearest neighbour). Only
  column c of each probability vector is ever read, so only that column is stored.
- bins: sort ``memory[c]`` ascending, keep the ``n_bins`` quantiles at ``round(linspace(0, n−1, n_bins+1))[1:]``
  (NumPy's round, like torch's, rounds halves to even).
- a pixel with pseudo-label c and confidence q has rank ``r = count(bins[c] < q) / n_bins`` and weight
  ``w = 2·sigmoid(k·r) − 1`` with ``k = k_start + (k_end − k_start)·t/T``; a class with an empty memory has no
  bins, so r = 0 and w = 0.
- ``L_u = Σ w·CE(pseudo_head(x_s), ŷ) / N_valid`` with no threshold, 0 for the first ``warmup_steps`` steps
  (the memory fills meanwhile); ``L = L_s + L_u``.
- after every epoch, once it is validated and checkpointed (as RS-DWL: evaluate and save, then merge):
  ``main_head ← α·pseudo_head + (1−α)·main_head``.

Order within a step: the memory takes the current batch first, then the bins are computed. Teacher and
refinement: see :mod:`geossl.ssl.pseudo` (with ``teacher: ema`` the EMA model's main head makes the
pseudo-labels; the ranking weights are refined with the labels; the memory holds the teacher's own labels).
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Annotated, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from geossl.models import Segmenter
from geossl.ssl.base import Batch, PseudoLabels, StepOutput, StrategyConfig, no_unlabeled, split
from geossl.ssl.losses import weighted_ce
from geossl.ssl.pseudo import PseudoLabelConfig, PseudoLabelStrategy


class DwlConfig(PseudoLabelConfig):
    """Defaults of the paper (α = 0.5 for CNN decoders; 1.0 for SegFormer), but for the teacher.

    The paper's teacher is the student itself; an EMA teacher is the default here, chosen by validation mIoU on
    Zion over three seeds (bench/RESULTS.md). ``teacher: student`` is the paper's recipe.
    """

    name: Literal["dwl"] = "dwl"
    teacher: Literal["student", "ema"] = "ema"
    memory_batches: Annotated[int, Field(ge=1)] = 50
    memory_size: Annotated[int, Field(ge=1)] = 64
    bins: Annotated[int, Field(ge=1)] = 20
    k_start: float = 2.0
    k_end: float = 22.0
    warmup_steps: Annotated[int, Field(ge=0)] = 50
    merge_alpha: Annotated[float, Field(ge=0, le=1)] = 0.5


class ClassMemory:
    """Per-class FIFO of the probabilities of pixels pseudo-labeled as that class."""

    def __init__(self, num_classes: int, batches: int = 50, size: int = 64) -> None:
        self.size = size
        self.queues: list[deque[Tensor]] = [deque(maxlen=batches) for _ in range(num_classes)]

    def update(self, probs: Tensor, labels: Tensor, valid: Tensor) -> None:
        """Add one batch: ``probs`` ``(N, K, H, W)``, ``labels`` and ``valid`` ``(N, H, W)``."""
        h, w = probs.shape[-2:]
        size = (min(self.size, h), min(self.size, w))
        p = F.interpolate(probs.detach().float(), size=size, mode="nearest")
        lab = F.interpolate(labels[:, None].float(), size=size, mode="nearest")[:, 0].long()
        ok = F.interpolate(valid[:, None].float(), size=size, mode="nearest")[:, 0] > 0.5
        for c, queue in enumerate(self.queues):
            sel = (lab == c) & ok
            if sel.any():
                queue.append(p[:, c][sel].cpu())

    def bins(self, n_bins: int) -> list[Tensor | None]:
        """For each class, its ``n_bins`` quantiles ``sorted[round(linspace(0, n−1, n_bins+1))[1:]]``.

        None for a class whose memory is empty.
        """
        out: list[Tensor | None] = []
        for queue in self.queues:
            if not queue:
                out.append(None)
                continue
            # NumPy's sort: ~15x faster than torch.sort on CPU for the up to 50 batches of pixels held here
            values = np.sort(torch.cat(list(queue)).numpy())
            idx = np.round(np.linspace(0, len(values) - 1, n_bins + 1))[1:].astype(np.int64)
            out.append(torch.from_numpy(values[idx]))
        return out

    def state_dict(self) -> dict[str, Any]:
        """The queues as lists of tensors."""
        return {"queues": [list(q) for q in self.queues]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the queues."""
        for queue, items in zip(self.queues, state["queues"], strict=True):
            queue.clear()
            queue.extend(items)


def rank_fraction(conf: Tensor, labels: Tensor, bins: list[Tensor | None]) -> Tensor:
    """``r = count(bins[ŷ] < q) / n_bins`` per pixel (0 for a class without bins)."""
    n_bins = next((len(b) for b in bins if b is not None), 1)
    table = torch.stack([b.to(conf.device, torch.float32) if b is not None
                         else torch.full((n_bins,), float("inf"), device=conf.device) for b in bins])
    # for each pixel, its class's bins; searchsorted(left) = how many of them are < q
    below = torch.searchsorted(table[labels.reshape(-1)], conf.reshape(-1, 1).float().contiguous())
    return below.reshape(conf.shape).float() / n_bins


def sharpness(step: int, total_steps: int, k_start: float = 2.0, k_end: float = 22.0) -> float:
    """``k = k_start + (k_end − k_start)·t/T``."""
    return k_start + (k_end - k_start) * step / max(1, total_steps)


def ranking_weight(r: Tensor, k: float) -> Tensor:
    """``w = 2·sigmoid(k·r) − 1``."""
    return 2 * torch.sigmoid(k * r) - 1


@torch.no_grad()
def merge_heads(main: nn.Module, pseudo: nn.Module, alpha: float) -> None:
    """``main ← α·pseudo + (1−α)·main``, parameter by parameter (and floating-point buffers)."""
    for (_, m), (_, p) in zip(main.state_dict().items(), pseudo.state_dict().items(), strict=True):
        if m.is_floating_point():
            m.copy_(alpha * p + (1 - alpha) * m)


class Dwl(PseudoLabelStrategy):
    """Decoupled heads with ranking weights (module docstring)."""

    Config = DwlConfig
    config: DwlConfig

    def __init__(self, model: Segmenter, config: StrategyConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(model, config, *args, **kwargs)
        cfg = self.config
        self.owned["pseudo_head"] = copy.deepcopy(model.net.segmentation_head)
        self.memory = ClassMemory(model.config.num_classes, cfg.memory_batches, cfg.memory_size)

    @property
    def pseudo_head(self) -> nn.Module:
        """The second classifier, trained on pseudo-labels only."""
        return self.owned["pseudo_head"]

    def training_step(self, batch_l: Batch, batch_u: Batch | None, step: int, total_steps: int,
                      rng: torch.Generator | None = None) -> StepOutput:
        """``L_s + L_u``."""
        if batch_u is None:
            raise no_unlabeled(self.name)
        cfg, model = self.config, self.model
        x_w, valid = batch_u["image"], batch_u["valid"]
        probs, conf, labels = self.teach(x_w)
        self.memory.update(probs, labels, valid)
        if step < cfg.warmup_steps:
            loss_s = self.supervised_loss(model(batch_l["image"]), batch_l["mask"])
            zero = torch.zeros_like(conf)
            return StepOutput(loss=loss_s, terms={"loss_s": loss_s.detach(), "loss_u": zero.sum()},
                              pseudo=PseudoLabels(labels=labels, weight=zero, valid=valid))
        k = sharpness(step, total_steps, cfg.k_start, cfg.k_end)
        weight = ranking_weight(rank_fraction(conf, labels, self.memory.bins(cfg.bins)), k) * valid
        labels, weight = self.refine(x_w, probs, labels, conf, valid, weight)
        strong = self.strong_view(x_w, valid, rng)
        n_l = batch_l["image"].shape[0]
        decoded_l, decoded_s = split(model.decode(model.features(torch.cat([batch_l["image"], strong.image]))), n_l)
        loss_s = self.supervised_loss(model.head(decoded_l), batch_l["mask"])
        v = strong.mix(valid)
        loss_u = weighted_ce(self.pseudo_head(decoded_s), strong.mix(labels), strong.mix(weight) * v, v.sum())
        return StepOutput(loss=loss_s + loss_u,
                          terms={"loss_s": loss_s.detach(), "loss_u": loss_u.detach(), "k": torch.tensor(k)},
                          pseudo=PseudoLabels(labels=labels, weight=weight, valid=valid))

    def on_train_epoch_end(self) -> None:
        """Merge the pseudo head into the main head."""
        merge_heads(self.model.net.segmentation_head, self.pseudo_head, self.config.merge_alpha)

    def state_dict(self) -> dict[str, Any]:
        """The class memory."""
        return {"memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the class memory."""
        if "memory" in state:
            self.memory.load_state_dict(state["memory"])
