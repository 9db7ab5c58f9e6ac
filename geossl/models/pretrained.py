"""Pretrained weights of the ecosystem, by name: what they fit and where their file is.

``--weights`` takes, besides ``none`` and a ``geossl pretrain`` encoder file:

- torchgeo's weights, ``ENUM.MEMBER`` as torchgeo prints them. Encoder weights of a timm model
  (``ResNet18_Weights.LANDSAT_OLI_SR_MOCO``: timm's resnet18) fit ``--encoder tu-resnet18``; a whole U-Net
  (``Unet_Weights.OAM_RGB_RESNET34_TCD``: encoder, decoder and head) fits ``--arch unet --encoder resnet34``.
- timm's pretrained tags, ``timm:MODEL.TAG`` (``timm:resnet18.a1_in1k``), or ``timm:MODEL`` for timm's default
  tag: they fit ``--encoder tu-MODEL``. timm's ImageNet weights take red, green, blue.

The files come from the caches torch.hub and huggingface_hub keep (:mod:`geossl.models.hubcache`). The bands the
weights take are named by torchgeo's metadata (:mod:`geossl.models.bandmap`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from geossl.errors import InputError
from geossl.models.bandmap import band_names
from geossl.models.hubcache import HubFile, UrlFile

#: How a timm pretrained tag is written on ``--weights``.
TIMM_PREFIX = "timm:"
#: The files a timm hub repository may keep its weights in, in the order timm tries them.
TIMM_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
#: The prefix of smp's timm encoders (``tu-resnet18``).
TIMM_ENCODER = "tu-"
_TORCHGEO_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*_Weights\.[A-Za-z0-9_]+$")
#: The torchgeo builder whose weights are whole smp U-Nets (the others' are timm models').
_TORCHGEO_UNET = "unet"


@dataclass(frozen=True)
class Pretrained:
    """Named weights: the encoder they fit, the bands and classes they were trained for, and their file.

    ``whole_unet``: the file is a whole smp U-Net's state dict (else a timm model's, whose non-classifier
    tensors fill the encoder); ``bands``: :func:`~geossl.models.bandmap.band_names` of their input channels
    (None: not named); ``num_classes``: the U-Net head's classes.
    """

    name: str
    encoder: str
    whole_unet: bool
    in_channels: int
    bands: list[tuple[str, ...]] | None
    num_classes: int | None
    file: UrlFile | HubFile

    @property
    def where(self) -> str:
        """How errors about them begin."""
        return f"--weights {self.name}"


def is_named(weights: str) -> bool:
    """Whether ``--weights`` names torchgeo or timm weights rather than a local file."""
    return weights.startswith(TIMM_PREFIX) or bool(_TORCHGEO_NAME.match(weights))


def describe(weights: str) -> Pretrained:
    """What named weights fit and where their file is (nothing is read or downloaded yet)."""
    return _timm(weights) if weights.startswith(TIMM_PREFIX) else _torchgeo(weights)


def timm_model(encoder: str) -> str | None:
    """The timm architecture of an smp encoder name (``tu-resnet18.a1_in1k`` → ``resnet18``); None if not timm."""
    from timm.models import split_model_name_tag

    return split_model_name_tag(encoder.removeprefix(TIMM_ENCODER))[0] if encoder.startswith(TIMM_ENCODER) else None


def _torchgeo(name: str) -> Pretrained:
    """The weights torchgeo names ``ENUM.MEMBER``: a timm encoder's, or a whole U-Net's (torchgeo's ``unet``)."""
    import timm

    builder, weight = _torchgeo_weight(name)
    meta: dict[str, Any] = weight.meta
    bands = band_names(meta["bands"], name) if meta.get("bands") else None
    if builder == _TORCHGEO_UNET:
        return Pretrained(name, meta["encoder"], True, meta["in_chans"], bands, meta["num_classes"],
                          UrlFile(weight.url))
    if not timm.is_model(builder):
        raise InputError(f"--weights {name}", f"torchgeo's weights of {builder}, which is not a timm model: geossl "
                                              "takes torchgeo's timm encoders (ResNet*_Weights) and U-Nets "
                                              "(Unet_Weights)")
    return Pretrained(name, TIMM_ENCODER + builder, False, meta["in_chans"], bands, None, UrlFile(weight.url))


def _torchgeo_weight(name: str) -> tuple[str, Any]:
    """The torchgeo builder of the weights ``ENUM.MEMBER``, and the weights (a torchvision ``Weights``)."""
    import torchgeo
    from torchgeo.models import get_model_weights, list_models

    enums: dict[str, tuple[str, Any]] = {}
    for builder in list_models():
        try:
            enum = get_model_weights(builder)
        except KeyError:  # a builder without weights
            continue
        enums.setdefault(enum.__name__, (builder, enum))
    enum_name, _, member = name.partition(".")
    if enum_name not in enums:
        raise InputError(f"--weights {name}", f"torchgeo {torchgeo.__version__} has no weights {enum_name} (it has "
                                              f"{', '.join(sorted(enums))})")
    builder, enum = enums[enum_name]
    if member not in enum.__members__:
        raise InputError(f"--weights {name}", f"torchgeo's {enum_name} has no {member} (it has "
                                              f"{', '.join(enum.__members__)})")
    return builder, enum[member]


def _timm(name: str) -> Pretrained:
    """The weights of timm's tag ``timm:MODEL[.TAG]``, in the hub repository timm names (or at its URL)."""
    import timm
    from timm.models import get_pretrained_cfg

    model = name.removeprefix(TIMM_PREFIX)
    where = f"--weights {name}"
    try:
        cfg = get_pretrained_cfg(model) if timm.is_model(model) else None
    except RuntimeError as exc:  # an unknown tag
        raise InputError(where, f"{exc} (timm.list_pretrained('{timm_model(TIMM_ENCODER + model)}*') lists the "
                                "tags)") from None
    if cfg is None:
        raise InputError(where, f"timm has no model {model!r}")
    if cfg.custom_load:
        raise InputError(where, "timm loads these weights with a model-specific loader; geossl takes timm's "
                                "state-dict weights")
    in_channels, encoder = cfg.input_size[0], TIMM_ENCODER + (cfg.architecture or model)
    bands = band_names(["R", "G", "B"], "") if in_channels == 3 else None
    if cfg.hf_hub_id:
        repo, _, revision = cfg.hf_hub_id.partition("@")
        hub = HubFile(repo, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else TIMM_HUB_FILES, revision or None)
        return Pretrained(name, encoder, False, in_channels, bands, None, hub)
    if isinstance(cfg.url, str) and cfg.url:
        return Pretrained(name, encoder, False, in_channels, bands, None, UrlFile(cfg.url))
    raise InputError(where, f"timm names no file for the weights of {model}")
