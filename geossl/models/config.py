"""Model configuration: architecture, encoder, bands in, classes out."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from geossl.config import StrictModel


class ModelConfig(StrictModel):
    """What to build: a segmentation-models-pytorch architecture with a timm (``tu-*``) or smp encoder.

    ``weights`` is ``"none"`` (train from scratch) or the path of a local file with encoder weights; nothing
    is ever downloaded.
    """

    arch: Literal["unet", "deeplabv3plus"] = "unet"
    encoder: str = "tu-resnet18"
    weights: str = "none"
    in_channels: Annotated[int, Field(ge=1)]
    num_classes: Annotated[int, Field(ge=2)]
    pseudo_head: bool = False
