"""Gather a run's outputs into the report: quicklooks, accuracy, curves, class areas, steps, links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geossl.catalog import Catalog, load_catalog
from geossl.manifest import ClassDef
from geossl.pipeline.context import RunContext
from geossl.pipeline.outputs import (
    EvaluateOutput,
    IngestOutput,
    PredictedScene,
    PredictOutput,
    Results,
    SuggestOutput,
    TrainOutput,
    VectorizeOutput,
)
from geossl.pipeline.quicklook import (
    class_quicklook,
    confidence_quicklook,
    curves_plot,
    read_curves,
    rgb_quicklook,
    suggestions_quicklook,
)
from geossl.pipeline.report import ReportData, write_report

#: Scenes shown with quicklooks (a regional run may have many; the rest are linked).
MAX_QUICKLOOK_SCENES = 4


def class_areas_km2(items: list[dict[str, Any]], classes: list[ClassDef]) -> list[tuple[str, str, float]]:
    """Predicted area per class in km² over all scenes, from the STAC items written by predict.

    The pixel area is ``|a·e|`` of each scene's transform, in the CRS's units squared (metres for projected
    CRSs: area / 1e6 is km²).
    """
    totals = {c.id: 0.0 for c in classes}
    for item in items:
        t = item["properties"]["proj:transform"]
        pixel_area = abs(t[0] * t[4])
        for cid, n in item["properties"]["geossl:class_pixels"].items():
            totals[int(cid)] = totals.get(int(cid), 0.0) + n * pixel_area / 1e6
    return [(c.name, c.color, totals.get(c.id, 0.0)) for c in classes]


def evaluation_metrics(evaluation: EvaluateOutput | None) -> dict[str, Any] | None:
    """The evaluate step's metrics file (with its confusion matrix), else its scores kept in the run state."""
    if evaluation is None:
        return None
    if evaluation.metrics.is_file():
        metrics: dict[str, Any] = json.loads(evaluation.metrics.read_text())
        return metrics
    return dict(evaluation.scores) or None


#: Suffixes of the outputs the report links to.
LINKED = (".tif", ".gpkg", ".fgb", ".geojson", ".parquet", ".json", ".pt", ".qml", ".png")


def linked_outputs(done: Results, run_dir: Path) -> list[Path]:
    """The files of the predict, vectorize, evaluate, train and suggest outputs in the run directory, by step."""
    files: list[Path] = []
    for kind in (PredictOutput, VectorizeOutput, EvaluateOutput, TrainOutput, SuggestOutput):
        output = done.find(kind)
        if output is not None:
            files += sorted(p for p in output.files() if p.suffix in LINKED and p.is_relative_to(run_dir))
    return files


def build_report(ctx: RunContext, done: Results, quicklook_size: int) -> Path:
    """Write ``RUN_DIR/report/report.html`` from the outputs of the steps before it; return its path."""
    ingest = done.get(IngestOutput)
    predicted = done.get(PredictOutput).scenes
    catalog = load_catalog(ingest.folder)
    data = ReportData(title=f"{ctx.config.name}: land cover of {catalog.name}",
                      class_names=[c.name for c in catalog.classes])
    for scene in catalog.scenes[:MAX_QUICKLOOK_SCENES]:
        data.figures += scene_figures(catalog, scene.id, ingest.images[scene.id], predicted.get(scene.id),
                                      quicklook_size)
    if len(catalog.scenes) > MAX_QUICKLOOK_SCENES:
        data.notes.append(f"Quicklooks of the first {MAX_QUICKLOOK_SCENES} of {len(catalog.scenes)} scenes.")
    evaluation = done.find(EvaluateOutput)
    data.metrics = evaluation_metrics(evaluation)
    if data.metrics and evaluation is not None and evaluation.confusion.is_file():
        data.figures.append(("plot:Confusion matrix", evaluation.confusion.read_bytes()))
    trained = done.get(TrainOutput)
    data.notes.append(training_round(trained))
    curves = trained.curves
    if curves is not None and curves.is_file():
        plot = curves_plot(read_curves(curves), [["train_loss"], ["val_miou"], ["pseudo_used_share",
                                                                                "pseudo_mean_weight",
                                                                                "pseudo_accuracy"]],
                           ["training loss", "validation mIoU", "pseudo-labels"])
        if plot is not None:
            data.figures.append(("plot:Training curves", plot))
    suggestions = done.find(SuggestOutput)
    if suggestions is not None:
        add_suggestions(data, suggestions.layer, catalog, ingest.images, quicklook_size)
    items = [predicted[s.id].read_item() for s in catalog.scenes if s.id in predicted]
    data.areas_km2 = class_areas_km2(items, catalog.classes)
    data.steps = dict(done.statuses)
    data.outputs = linked_outputs(done, ctx.run_dir)
    return write_report(data, ctx.folder("report"))


def training_round(trained: TrainOutput) -> str:
    """The labelling loop's round of the model: from scratch or fine-tuned, and the labeled regions it learned from."""
    start = "from scratch" if trained.fine_tuned_from is None else "fine-tuned from the previous round's model"
    regions = f" on {len(trained.labeled)} labeled region(s)" if trained.labeled else ""
    return f"Labelling round {trained.round}: the model was trained {start}{regions}."


def scene_figures(catalog: Catalog, scene: str, image: Path, predicted: PredictedScene | None, size: int
                  ) -> list[tuple[str, bytes]]:
    """A scene's quicklooks: RGB composite, and when predicted, the class map and the confidence."""
    figures = [(f"{scene}: RGB composite", rgb_quicklook(image, catalog.bands, size))]
    if predicted is not None:
        figures.append((f"{scene}: predicted classes",
                        class_quicklook(catalog.classes, predicted.classes, size, "Predicted land cover")))
        figures.append((f"{scene}: confidence", confidence_quicklook(predicted.confidence, size)))
    return figures


def add_suggestions(data: ReportData, path: Path, catalog: Catalog, images: dict[str, Path], size: int) -> None:
    """The suggest step's windows: a map per scene (of the first few) over the RGB composite, and their table."""
    import pyogrio
    import shapely

    frame = pyogrio.read_dataframe(path, layer=path.stem)
    colors = {c.name: c.color for c in catalog.classes}
    shares = [c for c in frame.columns if c.startswith("share_")]
    names = [c.name for c in catalog.classes]
    for row, geom in zip(frame.to_dict("records"), frame.geometry, strict=True):
        mix = sorted(zip(names, (row[c] for c in shares), strict=True), key=lambda t: -t[1])
        centre = shapely.centroid(geom)
        data.suggestions.append({"rank": int(row["rank"]), "score": row["score"], "uncertainty": row["uncertainty"],
                                 "color": colors.get(row["dominant"], "#ffffff"), "x": centre.x, "y": centre.y,
                                 "scene": row["scene"], "mix": ", ".join(f"{n} {100 * v:.0f}%" for n, v in mix[:3]
                                                                        if v > 0)})
    res = catalog.resolution[0]
    for scene in catalog.scenes[:MAX_QUICKLOOK_SCENES]:
        here = frame[frame["scene"] == scene.id]
        if len(here):
            side = [round((b[2] - b[0]) / res) for b in shapely.bounds(here.geometry.to_numpy())]
            windows = list(zip(here["rank"], here["row"], here["col"], side, strict=True))
            data.suggestion_maps.append((f"{scene.id}: where to label next",
                                         suggestions_quicklook(images[scene.id], catalog.bands, windows, size)))
