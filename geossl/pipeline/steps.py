"""The steps of a run, each a small class.

A step says what decides its outputs (:meth:`Step.options`, :meth:`Step.inputs`) and how to make them
(:meth:`Step.run`, or :meth:`Step.run_scene` for scene-level steps).

The runner hashes ``options`` with the size and modification time of every input file into the step's
digest: a step whose digest and outputs are unchanged is skipped.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from geossl.config import stable_hash
from geossl.io.names import METRICS_FILE
from geossl.pipeline.context import RunContext
from geossl.pipeline.state import Record

STEP_ORDER = ("synth", "ingest", "train", "suggest", "predict", "vectorize", "evaluate", "report")


class Step(ABC):
    """One step of a run (template: ``digest`` → ``run`` → ``restore``)."""

    name: ClassVar[str]
    scene_level: ClassVar[bool] = False

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self._info: dict[str, Any] = {}

    @abstractmethod
    def options(self) -> Any:
        """Everything besides input files that decides the outputs (JSON-serialisable)."""

    def inputs(self) -> list[Path]:
        """Files whose content the outputs depend on."""
        return []

    def digest(self) -> str:
        """Hash of options and input files (path, size, mtime)."""
        files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(self.inputs()) if p.is_file()]
        return stable_hash(self.name, self.options(), files)

    def run(self) -> list[Path]:
        """Make the outputs; return their paths."""
        raise NotImplementedError(f"{self.name} runs per scene")

    def scenes(self) -> list[str]:
        """Scene ids this step works on (scene-level steps)."""
        return []

    def run_scene(self, scene: str) -> list[Path]:
        """Make one scene's outputs; return their paths (scene-level steps)."""
        raise NotImplementedError(f"{self.name} is not a scene-level step")

    def info(self) -> dict[str, Any]:
        """Facts to keep in the state record (e.g. metrics), restored when the step is skipped."""
        return self._info

    def restore(self, record: Record | None) -> None:
        """Publish this step's results into the context, from a fresh run or a skipped one's record."""
        if record is None:
            return
        self.ctx.outputs[self.name] = sorted(record.outputs)
        self._info = dict(record.info)


class SynthStep(Step):
    """Write the demo's synthetic scene into ``RUN_DIR/data``."""

    name = "synth"

    def options(self) -> Any:
        return self.ctx.config.steps.synth.model_dump()  # type: ignore[union-attr]

    def run(self) -> list[Path]:
        from geossl.synth import write_scene

        opts = self.ctx.config.steps.synth
        assert opts is not None
        paths = write_scene(self.ctx.folder("data"), opts)
        return list(paths.values())


class IngestStep(Step):
    """``geossl ingest`` of the manifest into ``RUN_DIR/ingest``."""

    name = "ingest"

    def options(self) -> Any:
        return {"step": self.ctx.config.steps.ingest.model_dump(), "manifest": str(self.ctx.config.manifest)}

    def inputs(self) -> list[Path]:
        from geossl.manifest import load_manifest, resolve_inputs

        manifest = load_manifest(self.ctx.config.manifest)
        return [self.ctx.config.manifest,
                *resolve_inputs(manifest, self.ctx.config.manifest, self.ctx.data_root).all_files()]

    def run(self) -> list[Path]:
        from geossl.ingest.options import IngestOptions
        from geossl.ingest.run import ingest

        opts = self.ctx.config.steps.ingest
        out = self.ctx.folder("ingest")
        ingest(self.ctx.config.manifest, IngestOptions(
            out=out, data_root=self.ctx.data_root, scheduler=self.ctx.config.scheduler,
            workers=self.ctx.config.workers, compress=opts.compress, quiet=self.ctx.quiet))
        return [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")]

    def scene_images(self) -> dict[str, Path]:
        """Scene id → ingested image COG."""
        from geossl.catalog import load_catalog

        out = self.ctx.folder("ingest")
        return {s.id: out / s.image for s in load_catalog(out).scenes}


class TrainStep(Step):
    """Train into ``RUN_DIR/train`` (or take the pipeline's checkpoint)."""

    name = "train"

    def options(self) -> Any:
        opts = self.ctx.config.steps.train
        if opts.checkpoint is not None:
            return {"checkpoint": str(opts.checkpoint)}
        return opts.model_dump(mode="json", exclude={"checkpoint"})

    def inputs(self) -> list[Path]:
        opts = self.ctx.config.steps.train
        if opts.checkpoint is not None:
            return [opts.checkpoint]
        return [self.ctx.folder("ingest") / "catalog.json"]

    def run(self) -> list[Path]:
        from geossl.train.config import TrainConfig
        from geossl.train.run import train

        opts = self.ctx.config.steps.train
        if opts.checkpoint is not None:
            if not opts.checkpoint.is_file():
                from geossl.errors import InputError

                raise InputError(opts.checkpoint, "checkpoint not found (steps.train.checkpoint)")
            return [opts.checkpoint]
        config = TrainConfig.model_validate(opts.model_dump(exclude={"checkpoint"}))
        out = self.ctx.folder("train")
        marker = out / "pipeline-digest.txt"
        # A run killed while training resumes from its last checkpoint when the config is the same.
        resume = (out / "checkpoints" / "last.ckpt").is_file() and marker.is_file() \
            and marker.read_text() == self.digest()
        if not resume and out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        marker.write_text(self.digest())
        model = train(self.ctx.config.manifest, config, out, self.ctx.folder("ingest"), self.ctx.data_root,
                      resume=resume, quiet=self.ctx.quiet)
        return [model]

    def restore(self, record: Record | None) -> None:
        super().restore(record)
        opts = self.ctx.config.steps.train
        self.ctx.checkpoint = opts.checkpoint if opts.checkpoint is not None else self.ctx.folder("train") / "model.pt"


class SuggestStep(Step):
    """``geossl suggest`` with the run's model: where to label next, into ``RUN_DIR/suggest/suggestions.gpkg``."""

    name = "suggest"
    FILE = "suggestions.gpkg"

    def options(self) -> Any:
        return self.ctx.config.steps.suggest.model_dump()  # type: ignore[union-attr]

    def inputs(self) -> list[Path]:
        assert self.ctx.checkpoint is not None
        return [self.ctx.checkpoint, self.ctx.folder("ingest") / "catalog.json"]

    def run(self) -> list[Path]:
        from geossl.suggest.options import SuggestOptions
        from geossl.suggest.run import suggest

        opts = self.ctx.config.steps.suggest
        assert opts is not None and self.ctx.checkpoint is not None
        result = suggest(self.ctx.checkpoint, self.ctx.config.manifest, self.ctx.folder("ingest"), SuggestOptions(
            **opts.model_dump(), out=self.ctx.folder("suggest") / self.FILE, overwrite=True,
            data_root=self.ctx.data_root, quiet=self.ctx.quiet))
        return [result.path, result.style]


class PredictStep(Step):
    """``geossl predict`` of every ingested scene into ``RUN_DIR/predict``, scene by scene."""

    name = "predict"
    scene_level = True

    def options(self) -> Any:
        return self.ctx.config.steps.predict.model_dump(mode="json", exclude={"out", "scheduler", "workers", "quiet"})

    def inputs(self) -> list[Path]:
        assert self.ctx.checkpoint is not None
        return [self.ctx.checkpoint, self.ctx.folder("ingest") / "catalog.json"]

    def scenes(self) -> list[str]:
        return sorted(IngestStep(self.ctx).scene_images())

    def run_scene(self, scene: str) -> list[Path]:
        from geossl.predict.options import PredictOptions
        from geossl.predict.run import predict

        assert self.ctx.checkpoint is not None
        image = IngestStep(self.ctx).scene_images()[scene]
        out = self.ctx.folder("predict")
        given = self.ctx.config.steps.predict.model_dump(exclude={"out", "scheduler", "workers", "quiet"})
        options = PredictOptions(**given, out=out, scheduler=self.ctx.config.scheduler,
                                 workers=self.ctx.config.workers, quiet=self.ctx.quiet)
        predict(self.ctx.checkpoint, [image], options)
        return sorted(p for p in out.glob(f"{scene}[._]*") if p.is_file())


class VectorizeStep(Step):
    """``geossl vectorize`` of every predicted class raster into ``RUN_DIR/vectors``."""

    name = "vectorize"
    scene_level = True

    def options(self) -> Any:
        return self.ctx.config.steps.vectorize.model_dump(mode="json")  # type: ignore[union-attr]

    def inputs(self) -> list[Path]:
        return sorted(self.ctx.folder("predict").glob("*_classes.tif")) + \
            sorted(self.ctx.folder("predict").glob("*_confidence.tif"))

    def scenes(self) -> list[str]:
        return sorted(IngestStep(self.ctx).scene_images())

    def run_scene(self, scene: str) -> list[Path]:
        from geossl.vectorize.options import VectorizeOptions, VectorizeSettings
        from geossl.vectorize.run import vectorize

        opts = self.ctx.config.steps.vectorize
        assert opts is not None
        predicted = self.ctx.folder("predict")
        out = self.ctx.folder("vectors") / f"{scene}.{opts.format}"
        out.parent.mkdir(parents=True, exist_ok=True)
        confidence = predicted / f"{scene}_confidence.tif"
        summary = vectorize(predicted / f"{scene}_classes.tif", VectorizeOptions(
            **opts.model_dump(include=set(VectorizeSettings.model_fields)), out=out, format=opts.format,
            confidence=confidence if opts.confidence and confidence.is_file() else None, overwrite=True,
            scheduler=self.ctx.config.scheduler, workers=self.ctx.config.workers, quiet=self.ctx.quiet))
        return [summary.path, summary.style]


class EvaluateStep(Step):
    """``geossl evaluate`` of the model on one split of the ingested region."""

    name = "evaluate"

    def options(self) -> Any:
        return self.ctx.config.steps.evaluate.model_dump()  # type: ignore[union-attr]

    def inputs(self) -> list[Path]:
        assert self.ctx.checkpoint is not None
        return [self.ctx.checkpoint, self.ctx.folder("ingest") / "catalog.json"]

    def run(self) -> list[Path]:
        from geossl.train.config import EvaluateOptions
        from geossl.train.evaluate import evaluate

        opts = self.ctx.config.steps.evaluate
        assert opts is not None and self.ctx.checkpoint is not None
        out = self.ctx.folder("evaluate")
        metrics = evaluate(self.ctx.checkpoint, self.ctx.config.manifest, self.ctx.folder("ingest"), EvaluateOptions(
            **opts.model_dump(), out=out, data_root=self.ctx.data_root, quiet=self.ctx.quiet))
        self._info = {"metrics": {k: metrics[k] for k in ("miou", "oa", "kappa", "iou", "pixels", "split")}}
        return [out / METRICS_FILE, out / "confusion.png"]

    def restore(self, record: Record | None) -> None:
        super().restore(record)
        if "metrics" in self._info:
            self.ctx.metrics.update(self._info["metrics"])


class ReportStep(Step):
    """``RUN_DIR/report/report.html`` from every other step's outputs."""

    name = "report"

    def options(self) -> Any:
        return self.ctx.config.steps.report.model_dump()

    def inputs(self) -> list[Path]:
        files = [self.ctx.folder("ingest") / "catalog.json"]
        for sub in ("predict", "vectors", "evaluate", "suggest"):
            files += [p for p in self.ctx.folder(sub).rglob("*") if p.is_file()] if self.ctx.folder(sub).is_dir() \
                else []
        metrics_csv = self.ctx.folder("train") / "logs" / "metrics.csv"
        return [*files, metrics_csv] if metrics_csv.is_file() else files

    def run(self) -> list[Path]:
        from geossl.pipeline.build_report import build_report

        return [build_report(self.ctx)]


STEPS: dict[str, type[Step]] = {s.name: s for s in (SynthStep, IngestStep, TrainStep, SuggestStep, PredictStep,
                                                      VectorizeStep, EvaluateStep, ReportStep)}


def build_steps(ctx: RunContext) -> list[Step]:
    """The configured steps, in run order."""
    configured = ctx.config.steps
    return [STEPS[name](ctx) for name in STEP_ORDER if getattr(configured, name) is not None]

