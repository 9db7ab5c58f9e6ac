"""How often a strong view keeps a reference model's prediction: the measure the view defaults are chosen by.

A pseudo-label from the weak view is only worth teaching the strong view if the strong view still shows that
class. For a reference model ``f`` (a trained supervised model, in eval mode), a batch of weak views ``x`` and
one augmentation ``A`` (:data:`AUGMENTATIONS`, each alone at full probability, or ``strong``: the whole strong
view without CutMix), the kept share of class ``c`` is

``kept_c = #{pixels p valid, argmax f(x)_p = c, argmax f(A(x))_p = c} / #{p valid, argmax f(x)_p = c}``.

A low share means the augmentation changes what the model sees as the class: the unlabeled term then teaches
it to ignore the evidence for the class (on 30 m multispectral data, where the spectrum is the label, colour
jitter of ±0.4 σ kept 45 % of a per-pixel forest's predictions; ±0.1 kept 68 %).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from geossl.data.views import ViewConfig, photometric

#: The photometric augmentations measured one at a time: the :class:`ViewConfig` changes that make each alone.
AUGMENTATIONS: dict[str, dict[str, float]] = {
    "jitter": {"jitter_prob": 1.0, "blur_prob": 0.0, "band_drop_prob": 0.0, "band_mix_prob": 0.0},
    "blur": {"jitter_prob": 0.0, "blur_prob": 1.0, "band_drop_prob": 0.0, "band_mix_prob": 0.0},
    "band_drop": {"jitter_prob": 0.0, "blur_prob": 0.0, "band_drop_prob": 1.0, "band_mix_prob": 0.0},
    "band_mix": {"jitter_prob": 0.0, "blur_prob": 0.0, "band_drop_prob": 0.0, "band_mix_prob": 1.0},
}
#: The whole strong view (every augmentation at its configured probability), CutMix aside.
STRONG = "strong"


@dataclass(frozen=True)
class Agreement:
    """Per augmentation, per class: the pixels the reference predicted as the class, and how many were kept."""

    predicted: dict[str, np.ndarray]
    kept: dict[str, np.ndarray]

    def share(self, augmentation: str) -> np.ndarray:
        """``kept_c`` of one augmentation (NaN for a class the reference never predicted)."""
        n = self.predicted[augmentation].astype(np.float64)
        share: np.ndarray = np.divide(self.kept[augmentation], n, out=np.full_like(n, np.nan), where=n > 0)
        return share

    def overall(self, augmentation: str) -> float:
        """The kept share over all valid pixels."""
        return float(self.kept[augmentation].sum() / max(1, self.predicted[augmentation].sum()))


@torch.no_grad()
def view_agreement(model: Callable[[Tensor], Tensor], image: Tensor, valid: Tensor, views: ViewConfig,
                   num_classes: int, generator: torch.Generator | None = None,
                   augmentations: tuple[str, ...] = (*AUGMENTATIONS, STRONG)) -> Agreement:
    """The kept shares (module docstring) of ``augmentations`` on one normalised batch ``(N, C, H, W)``.

    ``views`` gives the strengths (resolved for the imagery's bands); each augmentation in
    :data:`AUGMENTATIONS` runs alone with probability 1, ``strong`` with the configured probabilities.
    """
    reference = model(image).argmax(dim=1)
    predicted, kept = {}, {}
    for name in augmentations:
        cfg = views if name == STRONG else views.model_copy(update=AUGMENTATIONS[name])
        seen = model(photometric(image, valid, cfg, generator)).argmax(dim=1)
        predicted[name] = _count(reference, valid, num_classes)
        kept[name] = _count(reference, valid & (seen == reference), num_classes)
    return Agreement(predicted=predicted, kept=kept)


def _count(labels: Tensor, where: Tensor, num_classes: int) -> np.ndarray:
    """Pixels of each class among ``where``."""
    return torch.bincount(labels[where].flatten(), minlength=num_classes).cpu().numpy()
