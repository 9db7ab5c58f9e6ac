"""Model configuration: architecture, encoder, bands in, classes out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from geossl.config import StrictModel


class ModelOptions(StrictModel):
    """What to build: a segmentation-models-pytorch architecture with a timm (``tu-*``) or smp encoder.

    The fields a user chooses (``geossl train``'s ``--arch``, ``--encoder``, ``--weights``,
    ``--decoder-channels``); :class:`ModelConfig` adds what the data decides.
    """

    arch: Literal["unet", "deeplabv3plus"] = Field(default="unet", description="Segmentation architecture.")
    encoder: str = Field(default="tu-resnet18", description="timm (tu-*) or smp encoder.")
    weights: str = Field(default="none", description="'none' (from scratch), a `geossl pretrain` encoder file, "
                         "torchgeo's weights (ResNet18_Weights.LANDSAT_OLI_SR_MOCO, Unet_Weights.OAM_RGB_RESNET34_TCD) "
                         "or timm's (timm:resnet18.a1_in1k): named weights are read from the torch/Hugging Face hub "
                         "caches, downloaded once when missing; their bands are matched to the imagery's by name.")
    decoder_channels: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None, description="Width of each of U-Net's 5 decoder blocks, or DeepLabV3+'s one decoder width "
                                  "(repeat the flag per value); small decoders make small, fast models "
                                  "[default: smp's].")

    @model_validator(mode="after")
    def _decoder(self) -> ModelOptions:
        if self.decoder_channels is not None:
            want = 5 if self.arch == "unet" else 1
            if len(self.decoder_channels) != want:
                raise ValueError(f"decoder_channels of {self.arch} takes {want} value(s), "
                                 f"got {len(self.decoder_channels)}")
        return self


class ModelConfig(ModelOptions):
    """A model fully described: :class:`ModelOptions` with the bands in and the classes out.

    Bundles and checkpoints written before strategies owned their modules also say ``pseudo_head`` (DWL's
    second classifier was part of the model then): the key is dropped when read, as are those weights
    (:func:`geossl.models.bundle.segmenter_state`).
    """

    in_channels: Annotated[int, Field(ge=1)]
    num_classes: Annotated[int, Field(ge=2)]

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pseudo_head" in data:
            data = {k: v for k, v in data.items() if k != "pseudo_head"}
        return data
