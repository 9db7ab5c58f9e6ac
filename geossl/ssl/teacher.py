"""The EMA (mean) teacher: a copy of the model whose weights follow the model's by exponential moving average.

As in UniMatch V2 (and Mean Teacher before it): after every optimizer step
``θ_teacher ← d·θ_teacher + (1 − d)·θ_model`` with ``d = min(decay, 1 − 1/(n + 1))``, ``n`` the updates made
before this one, so the teacher starts as the model after its first step and averages over ever more steps until
``1/(1 − decay)``; floating-point buffers (batch-norm statistics) are averaged the same way, counters copied.
The teacher predicts in eval mode and without gradient. It belongs to the strategy (checkpointed with
``--resume``, never exported).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import Tensor, nn


def ema_decay_at(decay: float, updates: int) -> float:
    """The decay of the update that follows ``updates`` earlier ones: ``min(decay, 1 − 1/(updates + 1))``."""
    return min(decay, 1.0 - 1.0 / (updates + 1))


@torch.no_grad()
def ema_update(teacher: Iterable[Tensor], student: Iterable[Tensor], decay: float) -> None:
    """``t ← decay·t + (1 − decay)·s`` for each pair of tensors, in place."""
    for t, s in zip(teacher, student, strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)


class EmaTeacher(nn.Module):
    """A frozen copy of ``model`` (under ``net``) that :meth:`update` moves towards the model; always in eval mode."""

    updates: Tensor

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.net = copy.deepcopy(model).requires_grad_(False).eval()
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True) -> EmaTeacher:
        """Stays in eval mode whatever the task's mode."""
        return super().train(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One EMA step of the parameters and floating-point buffers towards ``model``'s; counters copied.

        Batch-norm running statistics are averaged like the weights (UniMatch V2), so the teacher's statistics
        belong to its weights; integer buffers (``num_batches_tracked``) are copied.
        """
        decay = ema_decay_at(self.decay, int(self.updates))
        ema_update(self.net.parameters(), model.parameters(), decay)
        pairs = list(zip(self.net.buffers(), model.buffers(), strict=True))
        ema_update([m for m, _ in pairs if m.is_floating_point()], [t for m, t in pairs if m.is_floating_point()],
                   decay)
        for mine, theirs in pairs:
            if not mine.is_floating_point():
                mine.copy_(theirs)
        self.updates += 1

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """The teacher's logits."""
        logits: Tensor = self.net(x)
        return logits
