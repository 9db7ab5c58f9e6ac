"""The self-supervised methods: torchgeo's own Lightning tasks (heads and losses from lightly), set up for geossl.

Each method is torchgeo 0.8.1's task with the timm backbone named by the encoder, geossl's multispectral views
(:mod:`geossl.pretrain.augment`) and these changes, each for a reason:

- one optimizer for all: AdamW with a linear warm-up, then cosine decay, stepped every optimizer step.
  torchgeo schedules per epoch for ImageNet-length runs (MoCo v3: 40 warm-up epochs of an assumed 200; SimCLR:
  LARS at lr 4.8); a geossl run is counted in steps;
- MoCo v3's momentum encoder starts as a copy of the online one (as in the reference implementation; torchgeo
  initialises it independently, so a short run would chase a random network);
- BYOL gets a target network of its own and views of the window's own size. torchgeo's ``BYOL`` module wraps the
  same backbone as online and target network (so the moving average never acts on it) and resizes every view to
  224 px;
- smaller projection heads (2048 hidden units, as MoCo v2, instead of 4096): a CPU-sized budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import timm
import torch
from lightly.models.utils import deactivate_requires_grad
from torch import nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import LambdaLR
from torchgeo.trainers import BYOLTask, MoCoTask, SimCLRTask
from torchgeo.trainers.base import BaseTask
from torchgeo.trainers.byol import BYOL as TorchgeoBYOL
from torchgeo.trainers.byol import BackboneWrapper

from geossl.pretrain.augment import multispectral_views
from geossl.pretrain.config import PretrainConfig

#: Hidden width and output size of the projection heads.
HEAD_HIDDEN, HEAD_OUT = 2048, 256


@dataclass(frozen=True)
class Schedule:
    """AdamW's settings and the run's length in optimizer steps."""

    lr: float
    weight_decay: float
    total_steps: int
    warmup_steps: int

    def factor(self, step: int) -> float:
        """Learning-rate multiplier at ``step``: linear warm-up to 1, then cosine decay to 0."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        left = max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - self.warmup_steps) / left)))


class _Scheduled:
    """Mixin: :class:`Schedule`'s optimizer over the trainable parameters (momentum and target networks are not)."""

    schedule: Schedule

    def configure_optimizers(self) -> Any:
        """AdamW and its per-step schedule."""
        assert isinstance(self, nn.Module)
        s = self.schedule
        optimizer = AdamW([p for p in self.parameters() if p.requires_grad], lr=s.lr, weight_decay=s.weight_decay)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": LambdaLR(optimizer, s.factor), "interval": "step"}}


class MoCo(_Scheduled, MoCoTask):
    """torchgeo's MoCo (v3 here), its momentum encoder starting as a copy of the online one."""

    def configure_models(self) -> None:
        """The networks of torchgeo's task, then the momentum copies synchronised."""
        super().configure_models()
        self.backbone_momentum.load_state_dict(self.backbone.state_dict())
        self.projection_head_momentum.load_state_dict(self.projection_head.state_dict())


class SimCLR(_Scheduled, SimCLRTask):
    """torchgeo's SimCLR (v1 here: in-batch negatives, no memory bank)."""


class BYOL(_Scheduled, BYOLTask):
    """torchgeo's BYOL with a target network of its own and views of the window's size."""

    def __init__(self, model: str, in_channels: int, lr: float, size: int) -> None:
        """Like :class:`~torchgeo.trainers.BYOLTask`, on windows of ``size`` pixels."""
        self.size = size  # read by configure_models, which BaseTask's __init__ calls
        super().__init__(model=model, in_channels=in_channels, lr=lr)

    def configure_models(self) -> None:
        """Online and target timm backbones (pooled features: ``num_classes=0``), the same weights at first."""
        name, bands, size = self.hparams["model"], self.hparams["in_channels"], self.size
        online = timm.create_model(name, in_chans=bands, num_classes=0)
        target = timm.create_model(name, in_chans=bands, num_classes=0)
        target.load_state_dict(online.state_dict())
        self.model = TorchgeoBYOL(online, image_size=(size, size), hidden_layer=-1, in_channels=bands,
                                  projection_size=HEAD_OUT, hidden_size=HEAD_HIDDEN,
                                  augment_fn=multispectral_views(size, bands))
        # torchgeo's BYOL hooked a second wrapper (its "target") onto the online backbone: unhook it
        stale = self.model.target
        last = list(online.children())[-1]
        for key, hook in list(last._forward_hooks.items()):
            if getattr(hook, "__self__", None) is stale:
                del last._forward_hooks[key]
        self.model.target = BackboneWrapper(target, HEAD_OUT, HEAD_HIDDEN, layer=-1)
        with torch.no_grad():
            self.model.target(torch.zeros(2, bands, size, size))  # builds its projector
        self.model.target.projector.load_state_dict(self.model.backbone.projector.state_dict())
        deactivate_requires_grad(self.model.target)

    def backbone_module(self) -> nn.Module:
        """The online timm backbone."""
        backbone: nn.Module = self.model.backbone.model
        return backbone


def build_task(config: PretrainConfig, bands: int) -> BaseTask:
    """The Lightning task of ``config.method`` for ``bands``-band windows."""
    size, name = config.patch_size, config.timm_name
    task: BaseTask
    if config.method == "moco":
        views = multispectral_views(size, bands)
        task = MoCo(model=name, in_channels=bands, version=3, layers=3, hidden_dim=HEAD_HIDDEN,
                    output_dim=HEAD_OUT, lr=config.lr, weight_decay=config.weight_decay, temperature=1.0,
                    memory_bank_size=0, moco_momentum=0.99, size=size, augmentation1=views, augmentation2=views)
    elif config.method == "simclr":
        task = SimCLR(model=name, in_channels=bands, version=1, layers=2, hidden_dim=HEAD_HIDDEN,
                      output_dim=128, lr=config.lr, weight_decay=config.weight_decay, temperature=0.1,
                      memory_bank_size=0, size=size, augmentations=multispectral_views(size, bands))
    else:
        task = BYOL(model=name, in_channels=bands, lr=config.lr, size=size)
    task.schedule = Schedule(config.lr, config.weight_decay, config.max_steps,
                             round(config.warmup * config.max_steps))
    return task


def trained_backbone(task: BaseTask) -> nn.Module:
    """The timm backbone a task trained (the online network)."""
    return task.backbone_module() if isinstance(task, BYOL) else task.backbone  # type: ignore[return-value]
