"""Model configuration: architecture, encoder, bands in, classes out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from geossl.config import StrictModel


class ModelConfig(StrictModel):
    """What to build: a segmentation-models-pytorch architecture with a timm (``tu-*``) or smp encoder.

    ``decoder_channels`` (default: smp's) is the width of each of U-Net's 5 decoder blocks, or DeepLabV3+'s one
    decoder width; small decoders make small, fast models.

    ``weights`` is ``"none"`` (train from scratch) or the path of a local file with encoder weights; nothing
    is ever downloaded.
    """

    arch: Literal["unet", "deeplabv3plus"] = "unet"
    encoder: str = "tu-resnet18"
    weights: str = "none"
    in_channels: Annotated[int, Field(ge=1)]
    num_classes: Annotated[int, Field(ge=2)]
    pseudo_head: bool = False
    decoder_channels: list[Annotated[int, Field(ge=1)]] | None = None

    @model_validator(mode="after")
    def _decoder(self) -> ModelConfig:
        if self.decoder_channels is not None:
            want = 5 if self.arch == "unet" else 1
            if len(self.decoder_channels) != want:
                raise ValueError(f"decoder_channels of {self.arch} takes {want} value(s), "
                                 f"got {len(self.decoder_channels)}")
        return self
