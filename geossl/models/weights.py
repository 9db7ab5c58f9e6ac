"""Encoder weights files: ``geossl pretrain`` writes them, ``geossl train --weights FILE`` reads them.

A file is one dict that loads with ``torch.load(weights_only=True)``::

    {"format": "geossl-encoder", "version": 1,
     "meta": {"encoder": "tu-resnet18", "in_channels": 4, "bands": ["blue", ...], "method": "moco", ...},
     "state_dict": <state dict of the segmentation model's encoder (smp's ``model.encoder``)>}

The metadata says what the weights fit: a training run whose encoder, band count or band names differ is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from geossl.config import validate_model
from geossl.errors import InputError
from geossl.io.atomic import atomic_file

ENCODER_FORMAT = "geossl-encoder"
ENCODER_FORMAT_VERSION = 1


class EncoderMeta(BaseModel):
    """What a weights file fits (``encoder``, ``in_channels``, ``bands``) and how it was made (the rest)."""

    model_config = ConfigDict(extra="forbid")

    encoder: str
    in_channels: int
    bands: list[str]
    method: str
    steps: int
    patch_size: int


def save_encoder_weights(path: Path, meta: EncoderMeta, state: dict[str, Tensor]) -> None:
    """Write a weights file atomically."""
    payload = {"format": ENCODER_FORMAT, "version": ENCODER_FORMAT_VERSION, "meta": meta.model_dump(),
               "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()}}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


def read_encoder_weights(path: Path) -> tuple[EncoderMeta, dict[str, Tensor]]:
    """The metadata and encoder state dict of a weights file; :class:`InputError` naming it on any problem."""
    if not path.is_file():
        raise InputError(path, "encoder weights file not found (--weights takes a `geossl pretrain` file, torchgeo's "
                               "weights as ENUM.MEMBER or timm's as timm:MODEL.TAG)")
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's problem
        raise InputError(path, f"not a weights file torch can load safely: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        raise InputError(path, "not a geossl encoder weights file (write one with `geossl pretrain`)")
    if payload.get("version") != ENCODER_FORMAT_VERSION:
        raise InputError(path, f"encoder weights format version {payload.get('version')!r}; this geossl reads "
                               f"version {ENCODER_FORMAT_VERSION}")
    meta = validate_model(EncoderMeta, payload.get("meta") or {}, path)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(path, "the file holds no encoder state dict")
    return meta, state


def check_fits(path: Path, meta: EncoderMeta, encoder: str, in_channels: int, bands: list[str] | None) -> None:
    """The weights must be of the same encoder, band count and (when known) band names as the model."""
    if meta.encoder != encoder:
        raise InputError(path, f"weights of encoder {meta.encoder}, but the model uses {encoder} (--encoder)")
    if meta.in_channels != in_channels:
        raise InputError(path, f"weights for {meta.in_channels} bands, but the imagery has {in_channels}")
    if bands is not None and list(meta.bands) != list(bands):
        raise InputError(path, f"weights for bands {meta.bands}, but the imagery's bands are {list(bands)}")


def misfit(expected: Mapping[str, torch.Size], state: Mapping[str, Tensor]) -> str | None:
    """What keeps ``state`` from filling ``expected`` (tensor names and shapes) exactly; None when it fits."""
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k])]
    if not (missing or extra or shapes):
        return None
    first = (missing or extra or shapes)[0]
    return (f"{len(missing)} tensor(s) missing, {len(extra)} unexpected, {len(shapes)} of another shape "
            f"(first: {first})")


def load_strict(where: str | Path, module: torch.nn.Module, state: dict[str, Tensor], what: str) -> None:
    """Load ``state`` into ``module``: every tensor present, none extra, every shape equal."""
    problem = misfit({k: v.shape for k, v in module.state_dict().items()}, state)
    if problem is not None:
        raise InputError(where, f"weights do not fit {what}: {problem}")
    module.load_state_dict(state, strict=True)
