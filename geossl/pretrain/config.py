"""Pretraining options: one pydantic model, the single place where each option's default and meaning live."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from geossl.config import StrictModel, ThreadsOption
from geossl.models.config import ModelConfig

Method = Literal["moco", "simclr", "byol"]


class PretrainConfig(StrictModel):
    """Everything a pretraining run depends on besides its data (``geossl pretrain``'s flags).

    ``moco`` is the default method: MoCo v3 (the method of the SSL4EO-S12 multispectral benchmark and of
    torchgeo's own Sentinel-2 weights) has a momentum encoder that keeps its targets stable at the small batches
    a CPU affords, and no memory bank to size. On Zion (bench/pretrain.py) a ``simclr`` step costs about 3/4 of a
    ``moco`` step (one backbone instead of two), a ``byol`` step about 1.1×.
    """

    method: Method = Field("moco", description="Self-supervised method: moco (v3), simclr (v1) or byol.")
    encoder: str = Field(ModelConfig.model_fields["encoder"].default,
                         description="timm encoder as `geossl train --encoder` names it (tu-*).")
    patch_size: Annotated[int, Field(ge=32, multiple_of=32)] = Field(
        64, description="Window read from the imagery, in pixels (a multiple of 32); each view is a random "
                        "crop of it resized back to this size.")
    batch_size: Annotated[int, Field(ge=2)] = Field(32, description="Windows per step (each gives two views).")
    max_steps: Annotated[int, Field(ge=1)] = Field(1000, description="Optimizer steps.")
    lr: Annotated[float, Field(gt=0)] = Field(1e-3, description="AdamW peak learning rate.")
    weight_decay: Annotated[float, Field(ge=0)] = Field(1e-4, description="AdamW weight decay.")
    warmup: Annotated[float, Field(ge=0, lt=1)] = Field(
        0.1, description="Share of the steps over which the learning rate rises linearly (then cosine decay).")
    seed: int = Field(0, description="Random seed (windows, augmentations, initial weights).")
    accelerator: str = Field("auto", description="auto, cpu, gpu... (Lightning).")
    workers: Annotated[int, Field(ge=0)] = Field(0, description="DataLoader worker processes.")
    threads: ThreadsOption = None

    @field_validator("encoder")
    @classmethod
    def _timm_encoder(cls, value: str) -> str:
        if not value.startswith("tu-") or value == "tu-":
            raise ValueError(f"'{value}' is not a timm encoder; pretraining takes tu-<timm model> (e.g. tu-resnet18)")
        return value

    @property
    def timm_name(self) -> str:
        """The encoder's timm model name (``tu-resnet18`` → ``resnet18``)."""
        return self.encoder.removeprefix("tu-")
