"""Pipeline files (``pipelines/*.yaml``): a manifest, where to run, and the options of each step.

Example::

    name: demo
    manifest: ../data_manifests/synthetic.yaml   # relative to this file
    data_root: null          # where the manifest's data lies (default: the manifest's folder)
    run_dir: ../runs/demo    # default: runs/<name> beside the pipelines folder's parent
    scheduler: null          # tcp://host:port of a dask scheduler, default one LocalCluster for the run
    steps:
      synth: {size: 1024}    # demo only: write the synthetic scene into RUN_DIR/data first (SynthConfig fields)
      ingest: {}                                 # IngestSettings fields
      train: {strategy: dwl, max_steps: 200}     # TrainConfig fields, or {checkpoint: path/to/model.pt}
      suggest: {n: 10, size: 64}                 # SuggestSettings fields: where to label next
      predict: {tta: false}                      # PredictSettings fields
      vectorize: {min_area: 500, simplify: 10}   # VectorizeSettings fields, format, confidence
      evaluate: {split: test}                    # EvaluateSettings fields
      report: {}

Each step's options are its command's options model (or the part of it a run does not decide: output
folders, data root, scheduler and verbosity come from the run), so a step takes the same names, defaults and
checks as the command's flags; that model is also the step's class, which runs it (:mod:`geossl.pipeline.steps`).
A step left out is not run (``ingest``, ``train``, ``predict`` and ``report`` are always present). Unknown steps or
options are errors naming the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from geossl.config import Flag, StrictModel, read_yaml, validate_model
from geossl.errors import InputError
from geossl.pipeline.base import Step
from geossl.pipeline.steps import (
    EvaluateStep,
    IngestStep,
    PredictStep,
    ReportStep,
    SuggestStep,
    SynthStep,
    TrainStep,
    VectorizeStep,
)


class Steps(StrictModel):
    """The steps of a run, in the order they run: a step is registered here, once, by its field (its name)."""

    synth: SynthStep | None = None
    ingest: IngestStep = IngestStep()
    train: TrainStep = TrainStep()
    suggest: SuggestStep | None = None
    predict: PredictStep = PredictStep()
    vectorize: VectorizeStep | None = None
    evaluate: EvaluateStep | None = None
    report: ReportStep = ReportStep()

    @model_validator(mode="after")
    def _name_steps(self) -> Steps:
        """Each step learns its name from its field: the name is written once, here."""
        for name in type(self).model_fields:
            step = getattr(self, name)
            if step is not None:
                step._name = name
        return self

    def configured(self) -> list[Step]:
        """The steps this run has, in run order."""
        return [step for name in type(self).model_fields if (step := getattr(self, name)) is not None]


#: The names of the steps, in run order.
STEP_ORDER = tuple(Steps.model_fields)


class PipelineConfig(StrictModel):
    """A regional run."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    manifest: Path
    data_root: Path | None = None
    run_dir: Path | None = None
    scheduler: str | None = None
    workers: Annotated[int, Field(ge=1)] | None = None
    steps: Steps = Steps()

    @model_validator(mode="after")
    def _data_source(self) -> PipelineConfig:
        if self.steps.synth is not None and self.data_root is not None:
            raise ValueError("give either steps.synth (generated data) or data_root, not both")
        return self


def known_step(name: str) -> str:
    """``name`` if it is a step of a pipeline, else a ValueError listing them."""
    if name not in STEP_ORDER:
        raise ValueError(f"unknown step '{name}'; choose one of {', '.join(STEP_ORDER)}")
    return name


#: A step's name (a field of :class:`Steps`).
StepName = Annotated[str, AfterValidator(known_step)]


class RunOptions(StrictModel):
    """Options of ``geossl run``: values that override the pipeline file's, and steps to redo."""

    run_dir: Annotated[Path | None, Flag(metavar="DIRECTORY")] = Field(
        default=None, description="Run directory (outputs, state, logs) [default: the pipeline's run_dir, else "
                                  "runs/NAME].")
    data_root: Annotated[Path | None, Flag(metavar="DIRECTORY")] = Field(
        default=None, description="Where the manifest's data lies (overrides the pipeline's data_root).")
    scheduler: Annotated[str | None, Flag(metavar="ADDRESS")] = Field(
        default=None, description="An existing dask.distributed scheduler (overrides the pipeline's).")
    force: Annotated[list[StepName], Flag(metavar=f"[{'|'.join(STEP_ORDER)}]")] = Field(
        default=[], description="Redo this step even if it is up to date (repeatable).")


class DemoOptions(StrictModel):
    """Options of ``geossl demo``."""

    run_dir: Annotated[Path, Flag(metavar="DIRECTORY")] = Field(default=Path("demo_out"),
                                                                description="Run directory.")


def load_pipeline(path: str | Path, data_root: Path | None = None, run_dir: Path | None = None,
                  scheduler: str | None = None) -> PipelineConfig:
    """Read a pipeline file; relative paths are taken from its folder; CLI values override the file's."""
    path = Path(path)
    config = validate_model(PipelineConfig, read_yaml(path), path)
    base = path.parent.absolute()
    updates: dict[str, Any] = {"manifest": (base / config.manifest).resolve()}
    if data_root is not None:
        updates["data_root"] = data_root.absolute()
    elif config.data_root is not None:
        updates["data_root"] = (base / config.data_root).resolve()
    if run_dir is not None:
        updates["run_dir"] = run_dir.absolute()
    elif config.run_dir is not None:
        updates["run_dir"] = (base / config.run_dir).resolve()
    else:
        updates["run_dir"] = (Path.cwd() / "runs" / config.name).absolute()
    if scheduler is not None:
        updates["scheduler"] = scheduler
    if config.steps.train.checkpoint is not None:
        ckpt = (base / config.steps.train.checkpoint).resolve()
        updates["steps"] = config.steps.model_copy(
            update={"train": config.steps.train.model_copy(update={"checkpoint": ckpt})})
    config = config.model_copy(update=updates)
    if not config.manifest.is_file():
        raise InputError(path, f"the manifest {config.manifest} does not exist (field 'manifest')")
    return config
