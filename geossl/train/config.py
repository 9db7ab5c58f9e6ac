"""Options of ``geossl train`` (one model, from a YAML file (``--config``) and/or flags) and ``geossl evaluate``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from geossl.classweights import ClassWeighting
from geossl.config import NO_FLAG, DataRootOption, Flag, StrictModel, ThreadsOption, format_validation_error
from geossl.data.views import ViewConfig
from geossl.errors import InputError
from geossl.manifest import Split
from geossl.models.config import ModelOptions
from geossl.selection import LabeledSelection
from geossl.ssl import STRATEGIES, StrategyChoice, SupervisedConfig
from geossl.ssl.prior import PriorChoice, PriorTeacherConfig
from geossl.ssl.registry import choices

log = logging.getLogger(__name__)

#: Epochs of a run given neither ``max_steps`` nor ``max_epochs``.
DEFAULT_EPOCHS = 6


class TrainConfig(ModelOptions):
    """Everything a training run depends on besides its data: the model (:class:`ModelOptions`), how to train.

    ``strategy`` is the strategy with its options (its ``Config`` model: ``{name: dwl, merge_alpha: 0.5}``, or
    just ``dwl``; configs of the old form, ``strategy: dwl`` and ``strategy_params: {...}``, are upgraded when
    read); ``label_fraction`` redraws the labeled train regions (1.0: every train region with labels,
    the supervised upper bound), chosen by ``label_selection`` (``random`` or ``cover_classes``, see
    :mod:`geossl.selection`); ``threads`` sets torch's CPU threads (on a busy machine 1 can be many times
    faster than the default); ``steps_per_epoch`` batches make an epoch, after which the validation split is
    evaluated and checkpoints are written. Training stops after ``max_steps`` or ``max_epochs``, whichever
    comes first. ``debias_pseudo_labels`` removes the class weights' bias from the teacher before it makes
    pseudo-labels (:meth:`geossl.ssl.base.Strategy.pseudo_labels`): the references train their teacher with
    plain cross-entropy, and a class-weighted teacher over-predicts the up-weighted classes. Off by default: on
    Zion it nearly erased the rare classes from the pseudo-labels and test mIoU did not improve; the fAIr
    Zanzibar FixMatch run (bench/RESULTS.md) had it on, without a run to compare. ``prior``: the
    catalog's prior map as a second, weaker teacher of the pseudo-labelling strategies (:mod:`geossl.ssl.prior`).

    The defaults are the recipe chosen on Zion's validation blocks (bench/RESULTS.md): U-Net with a ResNet-18
    encoder, 96 px windows, 16 labeled windows a step, 6 epochs of 250 steps (1500 steps); with every train label
    it is above the per-pixel random forest, where the previous recipe (MobileNetV3-small, 64 px, batch 8) was
    4 points below.

    Every field but ``views`` (config file only) is also a ``geossl train`` flag; ``--strategy`` takes the name,
    ``--strategy-option KEY=VALUE`` each option (:func:`with_strategy_flags`).
    """

    strategy: Annotated[StrategyChoice, Flag(metavar=choices(STRATEGIES))] = Field(
        default=SupervisedConfig(), description="The strategy; in a config file with its options too "
                                                "({name: dwl, merge_alpha: 0.5}), see --strategy-option.")
    views: Annotated[ViewConfig, NO_FLAG] = ViewConfig()
    patch_size: int = Field(default=96, ge=32, multiple_of=32, description="Training window in pixels.")
    overlap: int | None = Field(default=None, ge=0, description="Window overlap recorded in the model for "
                                                                "prediction [default: a quarter of the patch].")
    batch_size: int = Field(default=16, ge=1, description="Labeled patches per step.")
    unlabeled_batch_size: int | None = Field(default=None, ge=1, description="Unlabeled patches per step "
                                                                             "[default: the batch size].")
    steps_per_epoch: int = Field(default=250, ge=1, description="Steps between validations/checkpoints.")
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
    labeled_sampling: Literal["uniform", "class_balanced"] = Field(
        default="uniform", description="Labeled training windows: uniform over the labeled area, or class_balanced "
                                       "(a class drawn uniformly among those labeled, then a window holding one of "
                                       "its pixels).")
    seed: int = Field(default=0, description="Random seed.")
    init_from: Annotated[Path | None, Flag(metavar="MODEL")] = Field(
        default=None, description="Start from this geossl model (RUN/model.pt or a checkpoint) of the same "
                                  "architecture, encoder, bands and classes: a warm start, e.g. a pseudo-labelling "
                                  "strategy from the supervised model of the same recipe, or the next round of the "
                                  "labelling loop [default: from --weights].")
    accelerator: str = Field(default="auto", description="auto, cpu, gpu... (Lightning).")
    devices: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        default=1, description="Devices (processes) to train on, or 'auto'.")
    precision: Literal["auto", "32-true", "16-mixed", "bf16-mixed"] = Field(
        default="auto", description="Lightning precision; auto: bf16-mixed (or 16-mixed) on a GPU, else 32-true.")
    workers: int = Field(default=0, ge=0, description="DataLoader worker processes.")
    threads: ThreadsOption = None
    prior: Annotated[PriorChoice, Flag(metavar="[auto|on|off|YAML]")] = Field(
        default=PriorTeacherConfig(), description="The catalog's prior map (manifest prior:) as a second teacher of "
        "the pseudo-labelling strategies: auto (when the catalog has one), on, off, or its options as YAML "
        "({weight: 0.5, until: 0.5, threshold: 0.95}).")
    pseudo_truth: bool = Field(default=True, description="Read the unlabeled regions' hidden labels to log the "
                                                         "pseudo-labels' accuracy (never used in a loss).")

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        return upgrade_strategy_params(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.overlap is not None and self.overlap >= self.patch_size:
            raise ValueError(f"overlap {self.overlap} must be smaller than patch_size {self.patch_size}")
        if self.init_from is not None and self.weights != "none":
            raise ValueError("give --weights or --init-from, not both (--init-from holds the whole model)")
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


def upgrade_strategy_params(values: dict[str, Any]) -> dict[str, Any]:
    """A training config's values with the old strategy form upgraded; other values unchanged.

    ``strategy: NAME`` + ``strategy_params: {...}`` become ``strategy: {name: NAME, ...}``. Raises ValueError
    when ``strategy_params`` sits beside a strategy given with its options already.
    """
    if "strategy_params" not in values:
        return values
    values = dict(values)
    params = values.pop("strategy_params")
    if not params:
        return values
    name = values.get("strategy", SupervisedConfig.tag())
    if not isinstance(name, str) or not isinstance(params, dict):
        raise ValueError("strategy_params (the old form) cannot be combined with strategy: {name: ..., ...}; "
                         "move its options into strategy")
    log.warning("strategy_params is the old form of a strategy's options: write strategy: %s instead",
                yaml.safe_dump({"name": name, **params}, default_flow_style=True, sort_keys=False).strip())
    values["strategy"] = {"name": name, **params}
    return values


def with_strategy_flags(values: dict[str, Any], name: str | None, options: Sequence[str]) -> dict[str, Any]:
    """A config file's values with ``--strategy NAME`` and ``--strategy-option KEY=VALUE`` applied.

    The file's strategy options stay when ``--strategy`` names the file's strategy or is not given (another
    strategy starts from its defaults). Each option's value is read as YAML (``0.5``, ``true``, ``[0.3, 0.6]``,
    ``ema``, ``{name: none}``) and checked here against the chosen strategy's options, so an error names the
    flag and the field; the file's own options are checked with the rest of the file.
    """
    try:
        values = upgrade_strategy_params(values)
    except ValueError as exc:
        raise InputError("strategy_params", str(exc)) from exc
    if name is None and not options:
        return values
    chosen = values.get("strategy", SupervisedConfig.tag())
    chosen = {"name": chosen} if isinstance(chosen, str) else dict(chosen) if isinstance(chosen, dict) else {}
    if name is not None and name != chosen.get("name"):
        chosen = {"name": name}
    if chosen.get("name") not in STRATEGIES:
        raise InputError("--strategy", f"unknown strategy {chosen.get('name')!r} (choose from "
                                       f"{', '.join(STRATEGIES)})")
    given = dict(_key_value(option) for option in options)
    try:
        STRATEGIES[chosen["name"]].Config.model_validate({**given, "name": chosen["name"]})
    except ValidationError as exc:
        raise InputError("--strategy-option", f"{chosen['name']}: {format_validation_error(exc)}") from exc
    return {**values, "strategy": {**chosen, **given}}


def _key_value(option: str) -> tuple[str, Any]:
    """``KEY=VALUE`` → ``(KEY, VALUE read as YAML)``."""
    key, sep, text = option.partition("=")
    if not sep or not key.strip():
        raise InputError("--strategy-option", f"expected KEY=VALUE, got {option!r}")
    try:
        return key.strip(), yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError("--strategy-option", f"{key.strip()}: value {text!r} is not valid YAML") from exc


class EvaluateSettings(StrictModel):
    """Which split to evaluate on: the option a pipeline's evaluate step sets too."""

    split: Split = Field(default=Split.TEST, description="Which split's regions to evaluate on.")


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
