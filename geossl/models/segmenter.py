"""The segmentation network: what is trained, exported and predicts.

Its encoder features, decoder output and classifier are reachable apart, so strategies can work between them
(feature perturbation, DWL's second classifier, which is the strategy's own module).
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
from torch import Tensor, nn

from geossl.errors import InputError
from geossl.models.config import ModelConfig
from geossl.models.pretrained import is_named
from geossl.models.pretrained_load import load_named_weights
from geossl.models.weights import check_fits, load_strict, read_encoder_weights


class Segmenter(nn.Module):
    """``encoder -> decoder -> head`` as in smp, split so strategies can work between the parts.

    Input height and width must be multiples of :attr:`stride` (32 for every smp encoder).
    """

    stride = 32

    def __init__(self, config: ModelConfig, bands: list[str] | None = None) -> None:
        """Build ``config``'s network; ``config.weights`` must fit it and ``bands`` (when given).

        The weights are a local ``geossl pretrain`` file, or torchgeo's or timm's weights by name
        (:mod:`geossl.models.pretrained_load`).
        """
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
        if is_named(config.weights):
            load_named_weights(self.net, config, bands)
        elif config.weights != "none":
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
        features: list[Tensor] = self.net.encoder(x)
        return features

    def decode(self, features: list[Tensor]) -> Tensor:
        """Decoder output (before the classifier)."""
        decoded: Tensor = self.net.decoder(features)
        return decoded

    def head(self, decoded: Tensor) -> Tensor:
        """Main classifier: logits ``(N, K, H, W)``."""
        logits: Tensor = self.net.segmentation_head(decoded)
        return logits

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the main head."""
        return self.head(self.decode(self.features(x)))
