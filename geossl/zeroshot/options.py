"""``geossl zeroshot``'s options: one pydantic model, the single place where each default and meaning live."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from geossl.config import Flag, StrictModel, ThreadsOption

#: The placeholder a prompt template must hold; it is replaced by the class name.
CLASS_PLACEHOLDER = "{class}"


class ZeroshotOptions(StrictModel):
    """How SAM proposes masks and CLIP names them."""

    sam: Annotated[Path, Flag(metavar="CKPT")] = Field(
        description="SAM checkpoint: a local state dict (.pth) of segment-anything's Sam; its size (ViT-B/L/H or "
                    "other) is read from the weights.")
    clip: Annotated[Path, Flag(metavar="CKPT")] = Field(
        description="open_clip checkpoint: a local state dict; its model config (open_clip's JSON: embed_dim, "
                    "vision_cfg, text_cfg) is the file beside it with the suffix .json.")
    out: Annotated[Path, Flag(metavar="PRIOR.tif")] = Field(
        description="Output class-id COG on the catalog's grid (0 = no label).")
    prompt_template: str = Field("a satellite image of {class}",
                                 description="CLIP text prompt of a class; {class} becomes the class name.")
    prompts_file: Annotated[Path | None, Flag(metavar="YAML")] = Field(
        None, description="YAML mapping class names to a prompt or a list of prompts (their embeddings are "
                          "averaged); classes it leaves out use --prompt-template.")
    rgb: str = Field("red,green,blue",
                     description="Three catalog band names, comma-separated, shown to SAM and CLIP as red, green, "
                                 "blue.")
    stretch_low: Annotated[float, Field(ge=0, lt=100)] = Field(
        2.0, description="Percentile of each RGB band mapped to 0 (over the scene's valid pixels).")
    stretch_high: Annotated[float, Field(gt=0, le=100)] = Field(
        98.0, description="Percentile of each RGB band mapped to 255.")
    tile: Annotated[int, Field(ge=64)] = Field(1024, description="Scene tile given to SAM at once, in pixels.")
    points_per_side: Annotated[int, Field(ge=1)] = Field(
        32, description="SAM point grid: points along each side of a tile.")
    pred_iou_thresh: Annotated[float, Field(ge=0, le=1)] = Field(
        0.88, description="SAM: keep masks whose predicted IoU is at least this.")
    stability_thresh: Annotated[float, Field(ge=0, le=1)] = Field(
        0.95, description="SAM: keep masks whose stability score is at least this.")
    min_area: Annotated[int, Field(ge=1)] = Field(25, description="Masks of fewer pixels are not labelled.")
    threads: ThreadsOption = None

    @field_validator("prompt_template")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if CLASS_PLACEHOLDER not in value:
            raise ValueError(f"the template must contain {CLASS_PLACEHOLDER}")
        return value

    @field_validator("rgb")
    @classmethod
    def _three_bands(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",")]
        if len(names) != 3 or not all(names):
            raise ValueError(f"give three band names (red,green,blue), not '{value}'")
        return ",".join(names)

    @property
    def rgb_bands(self) -> list[str]:
        """The band names of ``rgb``, red first."""
        return self.rgb.split(",")

    @model_validator(mode="after")
    def _stretch(self) -> ZeroshotOptions:
        if self.stretch_low >= self.stretch_high:
            raise ValueError("stretch_low must be below stretch_high")
        return self
