"""Gather a run's outputs into the report: quicklooks, accuracy, curves, class areas, steps, links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from geossl.catalog import Catalog, load_catalog
from geossl.io.names import METRICS_FILE
from geossl.manifest import ClassDef
from geossl.pipeline.context import RunContext
from geossl.pipeline.quicklook import (
    class_quicklook,
    confidence_quicklook,
    curves_plot,
    read_curves,
    rgb_quicklook,
    suggestions_quicklook,
)
from geossl.pipeline.report import ReportData, write_report
from geossl.pipeline.steps import SuggestStep

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


def evaluation_metrics(ctx: RunContext) -> dict[str, Any] | None:
    """The evaluate step's ``metrics.json`` (with its confusion matrix), else the metrics kept in the run state."""
    path = ctx.folder("evaluate") / METRICS_FILE
    if path.is_file():
        metrics: dict[str, Any] = json.loads(path.read_text())
        return metrics
    return ctx.metrics or None


def build_report(ctx: RunContext) -> Path:
    """Write ``RUN_DIR/report/report.html`` and return its path."""
    ingest_dir, predicted = ctx.folder("ingest"), ctx.folder("predict")
    catalog = load_catalog(ingest_dir)
    size = ctx.config.steps.report.quicklook_size
    data = ReportData(title=f"{ctx.config.name}: land cover of {catalog.name}",
                      class_names=[c.name for c in catalog.classes])
    items = []
    for scene in catalog.scenes:
        item_path = predicted / f"{scene.id}.json"
        if item_path.is_file():
            items.append(json.loads(item_path.read_text()))
    for scene in catalog.scenes[:MAX_QUICKLOOK_SCENES]:
        rgb = rgb_quicklook(ingest_dir / scene.image, catalog.bands, size)
        data.figures.append((f"{scene.id}: RGB composite", rgb))
        classes = predicted / f"{scene.id}_classes.tif"
        if classes.is_file():
            data.figures.append((f"{scene.id}: predicted classes",
                                 class_quicklook(catalog.classes, classes, size, "Predicted land cover")))
        confidence = predicted / f"{scene.id}_confidence.tif"
        if confidence.is_file():
            data.figures.append((f"{scene.id}: confidence", confidence_quicklook(confidence, size)))
    if len(catalog.scenes) > MAX_QUICKLOOK_SCENES:
        data.notes.append(f"Quicklooks of the first {MAX_QUICKLOOK_SCENES} of {len(catalog.scenes)} scenes.")
    data.metrics = evaluation_metrics(ctx)
    if data.metrics:
        confusion = ctx.folder("evaluate") / "confusion.png"
        if confusion.is_file():
            data.figures.append(("plot:Confusion matrix", confusion.read_bytes()))
    metrics_csv = ctx.folder("train") / "logs" / "metrics.csv"
    if metrics_csv.is_file():
        series = read_curves(metrics_csv)
        plot = curves_plot(series, [["train_loss"], ["val_miou"], ["pseudo_used_share", "pseudo_mean_weight",
                                                                   "pseudo_accuracy"]],
                           ["training loss", "validation mIoU", "pseudo-labels"])
        if plot is not None:
            data.figures.append(("plot:Training curves", plot))
    add_suggestions(data, ctx.folder("suggest") / SuggestStep.FILE, catalog, ingest_dir, size)
    data.areas_km2 = class_areas_km2(items, catalog.classes)
    data.steps = dict(ctx.step_results)
    for step in ("predict", "vectors", "evaluate", "train", "suggest"):
        folder = ctx.folder(step)
        if folder.is_dir():
            data.outputs += sorted(p for p in folder.glob("*") if p.is_file() and p.suffix in
                                   (".tif", ".gpkg", ".fgb", ".geojson", ".parquet", ".json", ".pt", ".qml", ".png"))
    return write_report(data, ctx.folder("report"))


def add_suggestions(data: ReportData, path: Path, catalog: Catalog, ingest_dir: Path, size: int) -> None:
    """The suggest step's windows: a map per scene (of the first few) over the RGB composite, and their table."""
    if not path.is_file():
        return
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
                                         suggestions_quicklook(ingest_dir / scene.image, catalog.bands, windows, size)))
