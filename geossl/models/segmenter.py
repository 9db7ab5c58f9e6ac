"""The segmentation network: what is trained, exported and predicts.

Its encoder features, decoder output and classifier are reachable apart, so strategies can work between them
(feature perturbation, DWL's second classifier, which is the strategy's own module).
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import Tensor, nn

from geossl.errors import InputError
from geossl.models.config import ModelConfig


class Segmenter(nn.Module):
    """``encoder -> decoder -> head`` as in smp, split so strategies can work between the parts.

    Input height and width must be multiples of :attr:`stride` (32 for every smp encoder).
    """

    stride = 32

    def __init__(self, config: ModelConfig) -> None:
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
        if config.weights != "none":
            self.load_encoder_weights(Path(config.weights))

    def load_encoder_weights(self, path: Path) -> None:
        """Load encoder weights from a local file (a state dict, optionally under ``state_dict``)."""
        if not path.is_file():
            raise InputError(path, "encoder weights file not found (weights load from local files only)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is the file's problem
            raise InputError(path, f"not a weights file torch can load safely: {exc}") from exc
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        if not isinstance(state, dict) or not set(state) & set(self.net.encoder.state_dict()):
            raise InputError(path, "no tensor in this file matches the encoder's parameters")
        try:
            self.net.encoder.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # tensors of other shapes (another encoder, another band count)
            raise InputError(path, f"weights do not fit encoder {self.config.encoder} with "
                                   f"{self.config.in_channels} bands: {str(exc).splitlines()[-1][:160]}") from exc

    def features(self, x: Tensor) -> list[Tensor]:
        """Encoder features, shallow to deep."""
        return self.net.encoder(x)

    def decode(self, features: list[Tensor]) -> Tensor:
        """Decoder output (before the classifier)."""
        return self.net.decoder(features)

    def head(self, decoded: Tensor) -> Tensor:
        """Main classifier: logits ``(N, K, H, W)``."""
        return self.net.segmentation_head(decoded)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the main head."""
        return self.head(self.decode(self.features(x)))
