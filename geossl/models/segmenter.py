"""The segmentation network.

Its encoder features are reachable (for feature perturbation) and it has an optional second classifier
(the pseudo head of decoupled weighting).
"""

from __future__ import annotations

import copy
from pathlib import Path

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from geossl.errors import InputError
from geossl.models.config import ModelConfig
from geossl.models.weights import check_fits, load_strict, read_encoder_weights


class Segmenter(nn.Module):
    """``encoder -> decoder -> head`` as in smp, split so strategies can work between the parts.

    Input height and width must be multiples of :attr:`stride` (32 for every smp encoder).
    """

    stride = 32

    def __init__(self, config: ModelConfig, bands: list[str] | None = None) -> None:
        """Build ``config``'s network; ``config.weights`` (a local file) must fit it and ``bands`` (when given)."""
        super().__init__()
        self.config = config
        extra: dict[str, object] = {}
        if config.decoder_channels is not None:
            extra["decoder_channels"] = (list(config.decoder_channels) if config.arch == "unet"
                                         else config.decoder_channels[0])
        try:
            self.net = smp.create_model(config.arch, encoder_name=config.encoder, encoder_weights=None,
                                        in_channels=config.in_channels, classes=config.num_classes, **extra)
        except (KeyError, ValueError, RuntimeError) as exc:
            raise InputError("--encoder", f"unknown encoder '{config.encoder}' for {config.arch}: "
                                          f"{str(exc).splitlines()[0]}") from exc
        self.pseudo_head = copy.deepcopy(self.net.segmentation_head) if config.pseudo_head else None
        if config.weights != "none":
            self.load_encoder_weights(Path(config.weights), bands)

    def load_encoder_weights(self, path: Path, bands: list[str] | None = None) -> None:
        """Load a ``geossl pretrain`` weights file into the encoder, strictly.

        The file's encoder, band count and (when ``bands`` is given) band names must be the model's, and its
        state dict must fill every encoder tensor with the same shape (:mod:`geossl.models.weights`).
        """
        meta, state = read_encoder_weights(path)
        check_fits(path, meta, self.config.encoder, self.config.in_channels, bands)
        load_strict(path, self.net.encoder, state, f"encoder {self.config.encoder}")

    def features(self, x: Tensor) -> list[Tensor]:
        """Encoder features, shallow to deep."""
        return self.net.encoder(x)

    def decode(self, features: list[Tensor]) -> Tensor:
        """Decoder output (before the classifier)."""
        return self.net.decoder(features)

    def head(self, decoded: Tensor) -> Tensor:
        """Main classifier: logits ``(N, K, H, W)``."""
        return self.net.segmentation_head(decoded)

    def pseudo(self, decoded: Tensor) -> Tensor:
        """The pseudo head (decoupled weighting): logits ``(N, K, H, W)``."""
        if self.pseudo_head is None:
            raise RuntimeError("this model was built without a pseudo head")
        return self.pseudo_head(decoded)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the main head."""
        return self.head(self.decode(self.features(x)))
