"""Named pretrained weights (:mod:`geossl.models.pretrained`) loaded into the network the options ask for.

The network is never changed to suit the weights: weights of another architecture are refused, naming the options
they fit. Before anything is read or downloaded, the weights' bands are matched to the imagery's by name
(:mod:`geossl.models.bandmap`); the file then fills the network strictly:

- a timm model's weights (torchgeo's ResNets, timm's tags) fill the encoder: timm's own loader builds the encoder
  from them (as ``tu-`` encoders are built, leaving out the classifier), every other tensor of the file must be one
  of the model's, of its shape;
- a whole U-Net's weights fill the whole network; the head is the weights' when the classes are as many (torchgeo's
  rule), else it starts fresh.

The first convolution is then rebuilt for the imagery's bands.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from geossl.errors import InputError
from geossl.models.bandmap import adapt_input_weight, input_channels
from geossl.models.checkpoint import read_state_dict
from geossl.models.config import ModelConfig
from geossl.models.pretrained import Pretrained, describe, timm_model
from geossl.models.weights import load_strict, misfit

log = logging.getLogger(__name__)

#: The attribute of smp's head (the classifier) in a whole U-Net's state dict.
HEAD = "segmentation_head."


def load_named_weights(net: nn.Module, config: ModelConfig, bands: list[str] | None) -> None:
    """Fill ``net`` (smp's model of ``config``) with the named ``config.weights``; ``bands``: the imagery's, or None."""
    weights = describe(config.weights)
    check_architecture(weights, config)
    channels = input_channels(weights.where, weights.bands, weights.in_channels, bands, config.in_channels)
    path = weights.file.fetch(weights.name)
    encoder = net.get_submodule("encoder")
    if weights.whole_unet:
        module, prefix, state = net, "encoder.", read_weights(path)
    else:
        module, prefix, state = encoder, "", timm_encoder_state(weights, path, config.encoder)
    key = f"{prefix}{first_conv(encoder)}.weight"
    if key in state:
        if state[key].shape[1] != weights.in_channels:
            raise InputError(path, f"its first convolution ({key}) takes {state[key].shape[1]} bands, but "
                                   f"{weights.name} are described as taking {weights.in_channels}")
        state[key] = adapt_input_weight(state[key], channels)
    if weights.whole_unet and weights.num_classes != config.num_classes:
        log.info("%s: the head for %d classes starts fresh (the weights' is for %s)", weights.where,
                 config.num_classes, weights.num_classes)
        state = {k: v for k, v in state.items() if not k.startswith(HEAD)}
        state.update({k: v for k, v in net.state_dict().items() if k.startswith(HEAD)})
    what = f"the U-Net with smp's {config.encoder} and default decoder" if weights.whole_unet else config.encoder
    load_strict(f"{weights.where} ({path})", module, state, what)
    log.info("%s: loaded from %s", weights.where, path)
    new = [band for band, j in zip(bands or (), channels, strict=False) if j is None]
    if new:
        log.warning("%s: no weights for band(s) %s: they start from zero kernels", weights.where, ", ".join(new))


def check_architecture(weights: Pretrained, config: ModelConfig) -> None:
    """The weights must be of the model's architecture: else refused, naming the options they fit."""
    if weights.whole_unet and (config.arch != "unet" or config.encoder != weights.encoder):
        raise InputError(weights.where, f"a whole U-Net with smp's {weights.encoder} encoder: train with --arch unet "
                                        f"--encoder {weights.encoder} (the model is {config.arch} with "
                                        f"{config.encoder})")
    if not weights.whole_unet and timm_model(config.encoder) != timm_model(weights.encoder):
        raise InputError(weights.where, f"weights of timm's {timm_model(weights.encoder)}: train with --encoder "
                                        f"{weights.encoder} (the model uses {config.encoder})")


def first_conv(module: nn.Module) -> str:
    """The name of the first convolution in ``module`` (an encoder's input convolution)."""
    return next(str(name) for name, m in module.named_modules() if isinstance(m, nn.Conv2d))


def read_weights(path: Path) -> dict[str, Tensor]:
    """The tensors of a weights file: safetensors, or a state dict ``torch.load`` reads safely."""
    if path.suffix != ".safetensors":
        return read_state_dict(path, "pretrained weights")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (OSError, SafetensorError) as exc:
        raise InputError(path, f"cannot read the safetensors file: {exc}") from None


def timm_encoder_state(weights: Pretrained, path: Path, encoder: str) -> dict[str, Tensor]:
    """The state dict of the ``tu-`` ``encoder`` that timm builds from a timm model's weights file.

    The file must hold every tensor of the timm model (taking ``weights.in_channels`` bands), of its shape, and
    nothing else but its classifier: timm's loader does not check that for a feature extractor.
    """
    import segmentation_models_pytorch as smp
    import timm
    from timm.models import get_pretrained_cfg

    arch = str(timm_model(weights.encoder))
    state, cfg = read_weights(path), get_pretrained_cfg(arch)
    try:
        with torch.device("meta"):
            plain = timm.create_model(arch, in_chans=weights.in_channels)
    except (RuntimeError, NotImplementedError):  # a model that cannot be built without memory
        plain = timm.create_model(arch, in_chans=weights.in_channels)
    classifiers = () if cfg is None or not cfg.classifier else (
        (cfg.classifier,) if isinstance(cfg.classifier, str) else tuple(cfg.classifier))
    head = {f"{name}.{part}" for name in classifiers for part in ("weight", "bias")}
    problem = misfit({k: v.shape for k, v in plain.state_dict().items() if k not in head},
                     {k: v for k, v in state.items() if k not in head})
    if problem is not None:
        raise InputError(f"{weights.where} ({path})", f"weights do not fit timm's {arch}: {problem}")
    size = tuple(cfg.input_size[1:]) if cfg is not None else (224, 224)
    built = smp.encoders.get_encoder(encoder, in_channels=weights.in_channels, weights=True,
                                     pretrained_cfg_overlay={"file": str(path),
                                                             "input_size": (weights.in_channels, *size)})
    return dict(built.state_dict())
