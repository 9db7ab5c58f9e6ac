"""``geossl run``: a pipeline's steps, skipping what is done; loads its class rasters, polygons and suggestions."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessingOutputHtml,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterString,
)

from ..algorithm import GeosslAlgorithm
from ..layers import load, load_suggestions
from .ingest import YAML

#: What a run writes that is loaded: the step, and how its files end.
LOADED = {"predict": ("_classes.tif",), "vectorize": (".gpkg", ".fgb", ".geojson", ".parquet"),
          "suggest": (".gpkg",)}
SUMMARY = "summary.json"


class RunPipeline(GeosslAlgorithm):
    """geossl run."""

    command = "run"
    title = "Run a pipeline"
    help = ("<p>Runs a pipeline file (ingest, train, suggest, predict, vectorize, evaluate, report), skipping the "
            "steps that are up to date; progress goes step by step. Loads the class rasters, the polygons and "
            "the suggestions (with their layer to draw labels in) the run holds; the report page is in the "
            "results viewer.</p>")

    def add_parameters(self) -> None:
        """Pipeline, run folder, data root, steps to redo."""
        self.add_file("PIPELINE", "Pipeline", YAML)
        self.addParameter(QgsProcessingParameterFolderDestination(
            "OUTPUT", "Run folder [the pipeline's run_dir]", optional=True, createByDefault=False))
        self.add_data_root("Data root (overrides the pipeline's)")
        self.addParameter(QgsProcessingParameterString("FORCE", "Steps to redo (comma-separated)", optional=True))
        self.addOutput(QgsProcessingOutputHtml("REPORT", "Report"))

    def arguments(self, parameters, context) -> list:
        """``PIPELINE [--run-dir] [--data-root] [--force STEP]...``."""
        force = self.parameterAsString(parameters, "FORCE", context) or ""
        return [self.parameterAsFile(parameters, "PIPELINE", context),
                *self.flag(parameters, context, "OUTPUT", "--run-dir"),
                *self.data_root_flag(parameters, context),
                *[a for step in force.split(",") if step.strip() for a in ("--force", step.strip())]]

    def results(self, parameters, context, printed: list) -> dict:
        """The report and the run folder; the run's outputs loaded (:data:`LOADED`)."""
        report = printed[-1]
        run_dir = next(p for p in report.parents if (p / SUMMARY).is_file())
        summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
        for step, endings in LOADED.items():
            for name in summary["outputs"].get(step, []):
                path = run_dir / name
                if not name.endswith(endings):
                    continue
                if step == "suggest":
                    load_suggestions(context, path)
                else:
                    load(context, str(path), path.stem, vector=step == "vectorize")
        return {"OUTPUT": str(run_dir), "REPORT": str(report)}
