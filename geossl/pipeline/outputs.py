"""What each step of a run hands to the steps after it: small typed records of the files it wrote.

A step returns its output (:class:`StepOutput`); the runner records it in ``state.json`` and adds it to the run's
:class:`Results`, from which later steps take what they need by type (``done.get(TrainOutput).checkpoint``).
A step skipped because it is up to date hands on the output recorded when it ran, read back into the same type,
so a resumed run's later steps get exactly what a fresh run's would. File names come from the command that
wrote the files (the catalog, the STAC Items, the paths ``train``/``vectorize`` return), never from a pattern.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class StepOutput(BaseModel):
    """A step's output: the files later steps read (a JSON-serialisable, frozen record)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @abstractmethod
    def files(self) -> list[Path]:
        """Every file this output names (fingerprinted in ``state.json``: the step is done while they are there)."""


S = TypeVar("S", bound=StepOutput)
Out = TypeVar("Out", bound=StepOutput)


class SceneOutputs(StepOutput, Generic[S]):
    """The output of a scene-level step: one record per scene id."""

    scenes: dict[str, S]

    def files(self) -> list[Path]:
        return [path for scene in self.scenes.values() for path in scene.files()]


class SynthOutput(StepOutput):
    """The demo's synthetic scene: image, labels and the manifest beside them (their folder is the data root)."""

    image: Path
    labels: Path
    manifest: Path

    @property
    def data_root(self) -> Path:
        """The folder the manifest's paths resolve in."""
        return self.image.parent

    def files(self) -> list[Path]:
        return [self.image, self.labels, self.manifest]


class IngestOutput(StepOutput):
    """The ingested catalog, each scene's image COG, and every file the catalog lists."""

    catalog: Path
    data_root: Path | None
    images: dict[str, Path]
    written: list[Path]

    @property
    def folder(self) -> Path:
        """The catalog's folder (what ``--catalog`` of train, evaluate and predict takes)."""
        return self.catalog.parent

    def files(self) -> list[Path]:
        return [self.catalog, *self.written]


class TrainOutput(StepOutput):
    """The model bundle to predict with; when trained in this run, its validation metrics and training curves.

    ``round`` counts the trainings of the run directory (1: the first; each later one, after the catalog changed,
    e.g. with labels drawn in the suggestions, is the next round); ``fine_tuned_from`` is the previous round's
    model it started from (None: from scratch); ``labeled`` the labeled region keys it learned from.
    """

    checkpoint: Path
    metrics: Path | None = None
    curves: Path | None = None
    round: int = 1
    fine_tuned_from: Path | None = None
    labeled: list[str] = []

    def files(self) -> list[Path]:
        return [p for p in (self.checkpoint, self.metrics, self.curves) if p is not None]


class SuggestOutput(StepOutput):
    """The suggested windows (where to label next) and their QGIS style."""

    layer: Path
    style: Path

    def files(self) -> list[Path]:
        return [self.layer, self.style]


class PredictedScene(StepOutput):
    """One scene's prediction: the rasters, the class raster's QGIS style and the STAC Item describing them."""

    classes: Path
    confidence: Path
    probabilities: Path | None = None
    style: Path
    item: Path

    @classmethod
    def of(cls, item: dict[str, Any], item_path: Path) -> PredictedScene:
        """The files a STAC Item written by ``geossl predict`` names (its assets, beside it)."""
        assets = {name: item_path.parent / asset["href"] for name, asset in item["assets"].items()}
        return cls(classes=assets["classes"], confidence=assets["confidence"],
                   probabilities=assets.get("probabilities"), style=assets["style"], item=item_path)

    def read_item(self) -> dict[str, Any]:
        """The scene's STAC Item."""
        item: dict[str, Any] = json.loads(self.item.read_text())
        return item

    def files(self) -> list[Path]:
        return [p for p in (self.classes, self.confidence, self.probabilities, self.style, self.item) if p is not None]


class PredictOutput(SceneOutputs[PredictedScene]):
    """Every scene's prediction."""


class VectorLayer(StepOutput):
    """One scene's polygons and their QGIS style."""

    layer: Path
    style: Path

    def files(self) -> list[Path]:
        return [self.layer, self.style]


class VectorizeOutput(SceneOutputs[VectorLayer]):
    """Every scene's polygons."""


class EvaluateOutput(StepOutput):
    """The evaluation's metrics file and confusion matrix plot, and its headline scores (for the run summary)."""

    metrics: Path
    confusion: Path
    scores: dict[str, Any]

    def files(self) -> list[Path]:
        return [self.metrics, self.confusion]


class ReportOutput(StepOutput):
    """The report page."""

    report: Path

    def files(self) -> list[Path]:
        return [self.report]


class Results:
    """What a run has so far: each finished (or up-to-date) step's output and status, in run order."""

    def __init__(self) -> None:
        self.outputs: dict[str, StepOutput] = {}
        self.statuses: dict[str, dict[str, Any]] = {}

    def add(self, step: str, output: StepOutput, status: dict[str, Any]) -> None:
        """Record step ``step``'s output and how it went (``status``: done or skipped, seconds)."""
        self.outputs[step] = output
        self.statuses[step] = status

    def find(self, kind: type[Out]) -> Out | None:
        """The output of type ``kind``, or None when no step of this run made one."""
        for output in self.outputs.values():
            if isinstance(output, kind):
                return output
        return None

    def get(self, kind: type[Out]) -> Out:
        """The output of type ``kind``; a step that needs it runs after the step that makes it."""
        output = self.find(kind)
        if output is None:
            raise LookupError(f"no step before this one made a {kind.__name__}")
        return output
