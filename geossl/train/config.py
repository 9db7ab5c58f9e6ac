"""Training configuration: one pydantic model, from a YAML file (``--config``) and/or command-line flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from geossl.config import StrictModel, read_yaml, validate_model
from geossl.data.views import ViewConfig
from geossl.errors import InputError
from geossl.selection import LabeledSelection


class TrainConfig(StrictModel):
    """Everything a training run depends on besides its data.

    ``strategy_params`` are the chosen strategy's parameters (its ``Config`` model, e.g. ``threshold``,
    ``merge_alpha``); ``label_fraction`` redraws the labeled train regions (1.0: every train region with labels,
    the supervised upper bound), chosen by ``label_selection`` (``random`` or ``cover_classes``, see
    :mod:`geossl.selection`); ``threads`` sets torch's CPU threads (on a busy machine 1 can be many times
    faster than the default); ``steps_per_epoch`` batches make an epoch, after which the validation split is
    evaluated and checkpoints are written. Training stops after ``max_steps`` or ``max_epochs``, whichever
    comes first. ``debias_pseudo_labels`` removes the class weights' bias from the teacher before it makes
    pseudo-labels (:meth:`geossl.ssl.base.Strategy.pseudo_labels`; off by default: on Zion it made pseudo-labels
    more accurate but nearly erased the rare classes from them, and test mIoU did not improve).
    """

    strategy: str = "supervised"
    strategy_params: dict[str, Any] = {}
    views: ViewConfig = ViewConfig()
    arch: Literal["unet", "deeplabv3plus"] = "unet"
    encoder: str = "tu-resnet18"
    weights: str = "none"
    decoder_channels: list[Annotated[int, Field(ge=1)]] | None = None
    patch_size: Annotated[int, Field(ge=32, multiple_of=32)] = 256
    overlap: Annotated[int, Field(ge=0)] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 8
    unlabeled_batch_size: Annotated[int, Field(ge=1)] | None = None
    steps_per_epoch: Annotated[int, Field(ge=1)] = 100
    max_steps: Annotated[int, Field(ge=1)] | None = None
    max_epochs: Annotated[int, Field(ge=1)] | None = None
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    poly_power: Annotated[float, Field(ge=0)] = 0.9
    class_weighting: Literal["none", "balanced"] = "balanced"
    debias_pseudo_labels: bool = False
    label_fraction: Annotated[float, Field(gt=0, le=1)] | None = None
    label_selection: LabeledSelection = "random"
    seed: int = 0
    accelerator: str = "auto"
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    precision: Literal["auto", "32-true", "16-mixed", "bf16-mixed"] = "auto"
    workers: Annotated[int, Field(ge=0)] = 0
    threads: Annotated[int, Field(ge=1)] | None = None
    pseudo_truth: bool = True

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.overlap is not None and self.overlap >= self.patch_size:
            raise ValueError(f"overlap {self.overlap} must be smaller than patch_size {self.patch_size}")
        return self

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run (``max_steps``, or ``max_epochs × steps_per_epoch``, or the smaller)."""
        by_epochs = (self.max_epochs or 20) * self.steps_per_epoch
        return min(self.max_steps, by_epochs) if self.max_steps and self.max_epochs else (self.max_steps or by_epochs)

    @property
    def epochs(self) -> int:
        """Epochs Lightning runs (the last may stop early at ``max_steps``)."""
        return -(-self.total_steps // self.steps_per_epoch)

    @property
    def prediction_overlap(self) -> int:
        """Window overlap recorded in the model bundle for prediction (default a quarter of the patch)."""
        return self.overlap if self.overlap is not None else self.patch_size // 4


def build_config(config_file: Path | None, flags: dict[str, Any]) -> TrainConfig:
    """A config file (if any) overridden by the flags given (None = not given)."""
    data: dict[str, Any] = read_yaml(config_file) if config_file is not None else {}
    given = {k: v for k, v in flags.items() if v is not None}
    data.update(given)
    try:
        return validate_model(TrainConfig, data, config_file if config_file is not None else "options")
    except InputError as exc:
        # name the flag when a flag was wrong, the file when the file was
        field = exc.problem.split("'")[1] if exc.problem.startswith("field '") else ""
        if field in given:
            raise InputError("--" + field.replace("_", "-"), exc.problem.split(": ", 1)[-1]) from exc
        raise
