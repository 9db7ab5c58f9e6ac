"""Options of ``geossl train`` (one model, from a YAML file (``--config``) and/or flags) and ``geossl evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from geossl.classweights import ClassWeighting
from geossl.config import NO_FLAG, DataRootOption, Flag, StrictModel, ThreadsOption
from geossl.data.views import ViewConfig
from geossl.models.config import ModelOptions
from geossl.selection import LabeledSelection

#: Epochs of a run given neither ``max_steps`` nor ``max_epochs``.
DEFAULT_EPOCHS = 20


class TrainConfig(ModelOptions):
    """Everything a training run depends on besides its data: the model (:class:`ModelOptions`), how to train.

    ``strategy_params`` are the chosen strategy's parameters (its ``Config`` model, e.g. ``threshold``,
    ``merge_alpha``); ``label_fraction`` redraws the labeled train regions (1.0: every train region with labels,
    the supervised upper bound), chosen by ``label_selection`` (``random`` or ``cover_classes``, see
    :mod:`geossl.selection`); ``threads`` sets torch's CPU threads (on a busy machine 1 can be many times
    faster than the default); ``steps_per_epoch`` batches make an epoch, after which the validation split is
    evaluated and checkpoints are written. Training stops after ``max_steps`` or ``max_epochs``, whichever
    comes first. ``debias_pseudo_labels`` removes the class weights' bias from the teacher before it makes
    pseudo-labels (:meth:`geossl.ssl.base.Strategy.pseudo_labels`; off by default: on Zion it made pseudo-labels
    more accurate but nearly erased the rare classes from them, and test mIoU did not improve).

    Every field but ``strategy_params`` and ``views`` (config file only) is also a ``geossl train`` flag.
    """

    strategy: str = Field(default="supervised", description="supervised, fixmatch, unimatch, crossview or dwl.")
    strategy_params: Annotated[dict[str, Any], NO_FLAG] = {}
    views: Annotated[ViewConfig, NO_FLAG] = ViewConfig()
    patch_size: int = Field(default=256, ge=32, multiple_of=32, description="Training window in pixels.")
    overlap: int | None = Field(default=None, ge=0, description="Window overlap recorded in the model for "
                                                                "prediction [default: a quarter of the patch].")
    batch_size: int = Field(default=8, ge=1, description="Labeled patches per step.")
    unlabeled_batch_size: int | None = Field(default=None, ge=1, description="Unlabeled patches per step "
                                                                             "[default: the batch size].")
    steps_per_epoch: int = Field(default=100, ge=1, description="Steps between validations/checkpoints.")
    max_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    max_epochs: int | None = Field(default=None, ge=1, description="Stop after this many epochs [default: "
                                                                   f"{DEFAULT_EPOCHS} without --max-steps].")
    lr: float = Field(default=1e-3, gt=0, description="AdamW learning rate.")
    weight_decay: float = Field(default=1e-4, ge=0, description="AdamW weight decay.")
    poly_power: float = Field(default=0.9, ge=0, description="Power of the polynomial learning-rate decay.")
    class_weighting: ClassWeighting = Field(
        default="balanced", description="Weight the loss by inverse class frequency, or not.")
    debias_pseudo_labels: bool = Field(default=False, description="Remove the class weights' bias from the "
                                                                  "teacher before it makes pseudo-labels.")
    label_fraction: float | None = Field(default=None, gt=0, le=1, description="Redraw the labeled train "
                                         "regions: this share of the train regions keeps labels [default: the "
                                         "catalog's].")
    label_selection: LabeledSelection = Field(default="random", description="How --label-fraction picks them: "
                                              "seeded random, or every class covered first.")
    seed: int = Field(default=0, description="Random seed.")
    accelerator: str = Field(default="auto", description="auto, cpu, gpu... (Lightning).")
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default=1, description="Devices (processes) to train on, or 'auto'.")
    precision: Literal["auto", "32-true", "16-mixed", "bf16-mixed"] = Field(
        default="auto", description="Lightning precision; auto: bf16-mixed (or 16-mixed) on a GPU, else 32-true.")
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes.")
    threads: ThreadsOption = None
    pseudo_truth: bool = Field(default=True, description="Read the unlabeled regions' hidden labels to log the "
                                                         "pseudo-labels' accuracy (never used in a loss).")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.overlap is not None and self.overlap >= self.patch_size:
            raise ValueError(f"overlap {self.overlap} must be smaller than patch_size {self.patch_size}")
        return self

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the whole run (``max_steps``, or ``max_epochs × steps_per_epoch``, or the smaller)."""
        by_epochs = (self.max_epochs or DEFAULT_EPOCHS) * self.steps_per_epoch
        return min(self.max_steps, by_epochs) if self.max_steps and self.max_epochs else (self.max_steps or by_epochs)

    @property
    def epochs(self) -> int:
        """Epochs Lightning runs (the last may stop early at ``max_steps``)."""
        return -(-self.total_steps // self.steps_per_epoch)

    @property
    def prediction_overlap(self) -> int:
        """Window overlap recorded in the model bundle for prediction (default a quarter of the patch)."""
        return self.overlap if self.overlap is not None else self.patch_size // 4


class EvaluateSettings(StrictModel):
    """Which split to evaluate on: the option a pipeline's evaluate step sets too."""

    split: Literal["labeled", "unlabeled", "val", "test"] = Field(
        default="test", description="Which split's regions to evaluate on.")


class EvaluateOptions(EvaluateSettings):
    """Options of ``geossl evaluate`` (everything but the checkpoint, the manifest and the catalog)."""

    out: Annotated[Path | None, Flag(metavar="DIRECTORY")] = Field(
        default=None, description="Folder for metrics.json and confusion.png [default: beside CHECKPOINT, "
                                  "eval-SPLIT].")
    batch_size: int = Field(default=16, ge=1, description="Windows per forward pass.")
    threads: ThreadsOption = None
    data_root: DataRootOption = None
    quiet: Annotated[bool, NO_FLAG] = False

    def folder(self, checkpoint: Path) -> Path:
        """Where the metrics go: ``out``, or ``eval-SPLIT`` beside the checkpoint."""
        return self.out if self.out is not None else checkpoint.parent / f"eval-{self.split}"
