"""From the pretrained timm backbone to the segmentation model's encoder: the tensors of one are the other's.

smp's ``tu-*`` encoder holds the same timm model built with ``features_only=True`` under ``model.``: the same
tensors without the classifier head. Where timm flattens nested stages for feature extraction (ConvNeXt's
``stages.0`` becomes ``stages_0``) the names differ only in ``.`` versus ``_``, so names are matched with
both written as ``_``; every encoder tensor must find exactly one backbone tensor of the same shape.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from geossl.errors import InputError

#: Depth of the encoders geossl's segmenters build (smp's default, 5 stages).
ENCODER_DEPTH = 5


def build_encoder(encoder: str, bands: int) -> nn.Module:
    """The smp encoder a ``geossl train --encoder`` model holds (random weights)."""
    try:
        module: nn.Module = smp.encoders.get_encoder(encoder, in_channels=bands, depth=ENCODER_DEPTH, weights=None)
        return module
    except (KeyError, ValueError, RuntimeError) as exc:
        raise InputError("--encoder", f"unknown encoder '{encoder}': {str(exc).splitlines()[0]}") from exc


def encoder_state(backbone: nn.Module, encoder: nn.Module, name: str) -> dict[str, Tensor]:
    """``encoder``'s state dict filled with ``backbone``'s tensors (see the module docstring).

    Raises :class:`InputError` (about ``--encoder``) when some encoder tensor has no unique counterpart.
    """
    source: dict[str, list[Tensor]] = {}
    for key, value in backbone.state_dict().items():
        source.setdefault(key.replace(".", "_"), []).append(value)
    state: dict[str, Tensor] = {}
    for key, mine in encoder.state_dict().items():
        found = source.get(key.removeprefix("model.").replace(".", "_"), [])
        if len(found) != 1 or found[0].shape != mine.shape:
            raise InputError("--encoder", f"{name}: the timm model's tensors do not map onto the segmentation "
                                          f"encoder (no unique tensor of shape {tuple(mine.shape)} for {key})")
        state[key] = found[0]
    return state
