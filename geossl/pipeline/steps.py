"""The steps of a run, one class each: the step's options (its command's options model) and how it runs.

Each takes the outputs of the steps before it from :class:`~geossl.pipeline.outputs.Results` and returns its
own typed output (:mod:`geossl.pipeline.outputs`). Ingest, predict and vectorize run on the run's one Dask client
(:meth:`RunContext.client`). A step is registered by its field in :class:`geossl.pipeline.config.Steps`, whose
order is the run order.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import Field

from geossl.config import stable_hash
from geossl.ingest.options import IngestSettings
from geossl.io.names import METRICS_FILE
from geossl.pipeline.base import Step
from geossl.pipeline.outputs import (
    EvaluateOutput,
    IngestOutput,
    PredictedScene,
    PredictOutput,
    ReportOutput,
    Results,
    SuggestOutput,
    SynthOutput,
    TrainOutput,
    VectorizeOutput,
    VectorLayer,
)
from geossl.predict.options import PredictSettings
from geossl.suggest.options import SuggestSettings
from geossl.synth import SynthConfig
from geossl.train.config import EvaluateSettings, TrainConfig
from geossl.vectorize.options import VectorFormat, VectorizeSettings

if TYPE_CHECKING:
    from geossl.manifest import ResolvedInputs
    from geossl.pipeline.context import RunContext

log = logging.getLogger(__name__)


class SynthStep(SynthConfig, Step):
    """Write a synthetic scene into ``RUN_DIR/data`` and use it as the data root (the demo)."""

    output = SynthOutput

    def run(self, ctx: RunContext, done: Results) -> SynthOutput:
        from geossl.synth import write_scene

        paths = write_scene(ctx.folder("data"), self)
        return SynthOutput(image=paths["image"], labels=paths["labels"], manifest=paths["manifest"])


class IngestStep(IngestSettings, Step):
    """Options of ``geossl ingest`` (output folder, data root, scheduler and verbosity come from the run)."""

    output = IngestOutput

    def options(self, ctx: RunContext) -> Any:
        return {"step": self.model_dump(), "manifest": str(ctx.config.manifest)}

    def data_root(self, ctx: RunContext, done: Results) -> Path | None:
        """Where the manifest's paths resolve: the synth step's scene for the demo, else the pipeline's."""
        synth = done.find(SynthOutput)
        return synth.data_root if synth is not None else ctx.config.data_root

    def resolved(self, ctx: RunContext, done: Results) -> ResolvedInputs:
        """The manifest's input files."""
        from geossl.manifest import load_manifest, resolve_inputs

        return resolve_inputs(load_manifest(ctx.config.manifest), ctx.config.manifest, self.data_root(ctx, done))

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [ctx.config.manifest, *self.resolved(ctx, done).all_files()]

    def digest(self, ctx: RunContext, done: Results) -> str:
        """The files' digest and the drawn label layers' content (suggest rewrites the file they may lie in)."""
        return stable_hash(super().digest(ctx, done), self.resolved(ctx, done).drawn_digests())

    def run(self, ctx: RunContext, done: Results) -> IngestOutput:
        from geossl.catalog import load_catalog
        from geossl.ingest.options import IngestOptions
        from geossl.ingest.run import ingest

        out, data_root = ctx.folder("ingest"), self.data_root(ctx, done)
        path = ingest(ctx.config.manifest, IngestOptions(
            out=out, data_root=data_root, scheduler=ctx.config.scheduler, workers=ctx.config.workers,
            compress=self.compress, quiet=ctx.quiet), client=ctx.client())
        catalog = load_catalog(out)
        return IngestOutput(catalog=path, data_root=data_root, images={s.id: out / s.image for s in catalog.scenes},
                            written=[out / rel for rel in sorted(catalog.outputs)])


class TrainStep(TrainConfig, Step):
    """Train a model (the fields of ``geossl train``'s config), or use ``checkpoint`` and skip training.

    ``fine_tune``: when the run directory holds the model of an earlier round (the step ran before and its inputs
    changed since, e.g. the manifest's ``labels.drawn`` gained polygons), the next round starts from that model
    (``init_from``; it is kept as ``train/previous/model.pt``) instead of from scratch, provided it is the same
    model (architecture, encoder, bands, classes); else the round trains from scratch, with a warning.
    """

    output = TrainOutput
    checkpoint: Path | None = None
    fine_tune: bool = Field(default=True, description="Start a later round from the previous round's model.")

    def options(self, ctx: RunContext) -> Any:
        if self.checkpoint is not None:
            return {"checkpoint": str(self.checkpoint)}
        return self.model_dump(mode="json", exclude={"checkpoint", "fine_tune"})

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [self.checkpoint] if self.checkpoint is not None else [done.get(IngestOutput).catalog]

    def run(self, ctx: RunContext, done: Results) -> TrainOutput:
        from geossl.train.run import CURVES, LAST, train

        if self.checkpoint is not None:
            if not self.checkpoint.is_file():
                from geossl.errors import InputError

                raise InputError(self.checkpoint, "checkpoint not found (steps.train.checkpoint)")
            return TrainOutput(checkpoint=self.checkpoint)
        ingest = done.get(IngestOutput)
        out = ctx.folder("train")
        marker, key = out / "pipeline-digest.txt", self.digest(ctx, done)
        # A run killed while training resumes from its last checkpoint when the digest is the same.
        resume = (out / LAST).is_file() and marker.is_file() and marker.read_text() == key
        round_ = _round_of(out, resume)
        if not resume:
            _keep_previous(out)
        out.mkdir(parents=True, exist_ok=True)
        marker.write_text(key)
        (out / ROUND_FILE).write_text(str(round_))
        config = TrainConfig.model_validate(self.model_dump(exclude={"checkpoint", "fine_tune"}))
        start = self._start(config, out / PREVIOUS, ctx, ingest)
        model = train(ctx.config.manifest, config.model_copy(update={"init_from": start}), out, ingest.folder,
                      ingest.data_root, resume=resume, quiet=ctx.quiet)
        metrics, curves = out / METRICS_FILE, out / CURVES
        return TrainOutput(checkpoint=model, metrics=metrics if metrics.is_file() else None,
                           curves=curves if curves.is_file() else None, round=round_, fine_tuned_from=start,
                           labeled=_labeled_keys(model))

    def _start(self, config: TrainConfig, previous: Path, ctx: RunContext, ingest: IngestOutput) -> Path | None:
        """The model this round starts from: ``init_from``, else the previous round's when it fits, else none."""
        if config.init_from is not None or not self.fine_tune or not previous.is_file():
            return config.init_from
        from geossl.catalog import load_catalog
        from geossl.errors import InputError
        from geossl.train.run import check_init_from, model_config

        catalog = load_catalog(ingest.folder)
        try:
            check_init_from(previous, model_config(config, catalog), catalog)
        except InputError as error:
            log.warning("round trains from scratch: the previous round's model does not fit (%s)", error.problem)
            return None
        log.info("fine-tuning from the previous round's model %s", previous)
        return previous


#: In ``RUN_DIR/train``: the round the model there belongs to, and the previous round's model (kept to start from).
ROUND_FILE, PREVIOUS = "round.txt", Path("previous") / "model.pt"


def _round_of(out: Path, resume: bool) -> int:
    """The round of the training about to run in ``out``.

    One more than the last when that round finished (left its model) and this is not its resumption; else the
    same (resumed, or redone after it was killed).
    """
    from geossl.train.run import MODEL_FILE

    try:
        last = int((out / ROUND_FILE).read_text())
    except (OSError, ValueError):
        return 1
    return last + 1 if (out / MODEL_FILE).is_file() and not resume else last


def _keep_previous(out: Path) -> None:
    """Empty ``out`` for a new round, keeping the model to start from (if any) as ``out/previous/model.pt``.

    That is the last round's finished model, else (that round was killed before it finished) the one it started
    from.
    """
    from geossl.train.run import MODEL_FILE

    if not out.exists():
        return
    finished = out / MODEL_FILE
    kept = out.parent / f".{out.name}-previous.pt"
    for source in (finished, out / PREVIOUS):
        if source.is_file():
            source.replace(kept)
            break
    shutil.rmtree(out)
    if kept.is_file():
        (out / PREVIOUS).parent.mkdir(parents=True)
        kept.replace(out / PREVIOUS)


def _labeled_keys(model: Path) -> list[str]:
    """The labeled region keys a model bundle records (none for an older bundle)."""
    from geossl.models import describe_bundle

    record = describe_bundle(model).trained_on
    return [] if record is None else record.labeled


class SuggestStep(SuggestSettings, Step):
    """Options of ``geossl suggest`` into ``RUN_DIR/suggest`` (output, data root and verbosity come from the run)."""

    output = SuggestOutput
    #: The suggestions' file in ``RUN_DIR/suggest`` (its style beside it, as ``.qml``).
    FILE: ClassVar[str] = "suggestions.gpkg"

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [done.get(TrainOutput).checkpoint, done.get(IngestOutput).catalog]

    def run(self, ctx: RunContext, done: Results) -> SuggestOutput:
        from geossl.suggest.options import SuggestOptions
        from geossl.suggest.run import suggest

        ingest = done.get(IngestOutput)
        result = suggest(done.get(TrainOutput).checkpoint, ctx.config.manifest, ingest.folder, SuggestOptions(
            **self.model_dump(), out=ctx.folder("suggest") / self.FILE, overwrite=True, data_root=ingest.data_root,
            quiet=ctx.quiet))
        return SuggestOutput(layer=result.path, style=result.style)


class PredictStep(PredictSettings, Step):
    """Options of ``geossl predict`` (output folder, scheduler and verbosity come from the run)."""

    output = PredictOutput
    scene_output = PredictedScene

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [done.get(TrainOutput).checkpoint, done.get(IngestOutput).catalog]

    def scenes(self, ctx: RunContext, done: Results) -> list[str]:
        return sorted(done.get(IngestOutput).images)

    def run_scene(self, ctx: RunContext, done: Results, scene: str) -> PredictedScene:
        from geossl.predict.options import PredictOptions
        from geossl.predict.run import item_file, predict

        out = ctx.folder("predict")
        options = PredictOptions(**self.model_dump(), out=out, scheduler=ctx.config.scheduler,
                                 workers=ctx.config.workers, quiet=ctx.quiet)
        (item,) = predict(done.get(TrainOutput).checkpoint, [done.get(IngestOutput).images[scene]], options,
                          client=ctx.client())
        return PredictedScene.of(item, out / item_file(item["id"]))


class VectorizeStep(VectorizeSettings, Step):
    """Options of ``geossl vectorize`` into ``RUN_DIR/vectors/<scene>.<format>``.

    ``confidence`` adds the mean confidence of each polygon (from the predict step's confidence raster).
    """

    output = VectorizeOutput
    scene_output = VectorLayer
    format: VectorFormat = "gpkg"
    confidence: bool = True

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [p for s in done.get(PredictOutput).scenes.values() for p in (s.classes, s.confidence)]

    def scenes(self, ctx: RunContext, done: Results) -> list[str]:
        return sorted(done.get(PredictOutput).scenes)

    def run_scene(self, ctx: RunContext, done: Results, scene: str) -> VectorLayer:
        from geossl.vectorize.options import VectorizeOptions
        from geossl.vectorize.run import vectorize

        predicted = done.get(PredictOutput).scenes[scene]
        out = ctx.folder("vectors") / f"{scene}.{self.format}"
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = vectorize(predicted.classes, VectorizeOptions(
            **self.model_dump(include=set(VectorizeSettings.model_fields)), out=out, format=self.format,
            confidence=predicted.confidence if self.confidence else None, overwrite=True,
            scheduler=ctx.config.scheduler, workers=ctx.config.workers, quiet=ctx.quiet), client=ctx.client())
        return VectorLayer(layer=summary.path, style=summary.style)


class EvaluateStep(EvaluateSettings, Step):
    """Compare the predicted map with the labels inside one split."""

    output = EvaluateOutput
    #: The metrics kept in the run's summary.
    SCORES: ClassVar[tuple[str, ...]] = ("miou", "oa", "kappa", "iou", "pixels", "split")

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        return [done.get(TrainOutput).checkpoint, done.get(IngestOutput).catalog]

    def run(self, ctx: RunContext, done: Results) -> EvaluateOutput:
        from geossl.train.config import EvaluateOptions
        from geossl.train.evaluate import CONFUSION_FILE, evaluate

        ingest, out = done.get(IngestOutput), ctx.folder("evaluate")
        metrics = evaluate(done.get(TrainOutput).checkpoint, ctx.config.manifest, ingest.folder, EvaluateOptions(
            **self.model_dump(), out=out, data_root=ingest.data_root, quiet=ctx.quiet))
        return EvaluateOutput(metrics=out / METRICS_FILE, confusion=out / CONFUSION_FILE,
                              scores={k: metrics[k] for k in self.SCORES})


class ReportStep(Step):
    """Write ``report/report.html``."""

    output = ReportOutput
    quicklook_size: Annotated[int, Field(ge=128, le=4096)] = 1024

    def inputs(self, ctx: RunContext, done: Results) -> list[Path]:
        files = [done.get(IngestOutput).catalog]
        for kind in (SuggestOutput, PredictOutput, VectorizeOutput, EvaluateOutput):
            output = done.find(kind)
            files += output.files() if output is not None else []
        curves = done.get(TrainOutput).curves
        return [*files, curves] if curves is not None else files

    def run(self, ctx: RunContext, done: Results) -> ReportOutput:
        from geossl.pipeline.build_report import build_report

        return ReportOutput(report=build_report(ctx, done, self.quicklook_size))
