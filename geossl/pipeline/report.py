"""``report.html``: one self-contained page (images inlined) that opens offline.

Sections: quicklooks (RGB, class map with legend, confidence), accuracy (macro mIoU, OA, kappa, per-class
IoU, confusion matrix), where to label next (the suggestions over the RGB composite, their table), training
curves, class areas in km², run steps with timings, links to the outputs.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geossl.io.atomic import write_text_atomic


@dataclass
class ReportData:
    """Everything the page shows."""

    title: str
    figures: list[tuple[str, bytes]] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    class_names: list[str] = field(default_factory=list)
    areas_km2: list[tuple[str, str, float]] = field(default_factory=list)  # (name, colour, km²)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    suggestion_maps: list[tuple[str, bytes]] = field(default_factory=list)
    suggestions: list[dict[str, Any]] = field(default_factory=list)  # rank, score, uncertainty, dominant...


#: Width of the page's content (CSS pixels); plots narrower than this are shown at their own size.
PAGE_WIDTH_PX = 1100

_CSS = f"body{{max-width:{PAGE_WIDTH_PX}px}}" + """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;color:#222}
h1{margin-bottom:0}.sub{color:#666;margin-top:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.figs{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0}figure img{max-width:520px;border:1px solid #eee}figure.plot,figure.plot img{max-width:100%}
.sw{display:inline-block;width:.9em;height:.9em;
margin-right:.4em;vertical-align:middle;border:1px solid #999}.kpi{font-size:1.3em;margin-right:1.5em}
"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _plot_figure(png: bytes, title: str) -> str:
    """A plot, shown at its own size (its text is drawn for that size) unless wider than the page."""
    return f"<figure class='plot'>{_img(png, title)}<figcaption>{html.escape(title)}</figcaption></figure>"


def render(data: ReportData, report_dir: Path) -> str:
    """The page as HTML text; links are relative to ``report_dir``."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(data.title)}</h1>",
             f"<p class='sub'>geossl report, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC</p>"]
    for note in data.notes:
        parts.append(f"<p>{html.escape(note)}</p>")
    maps = [(t, p) for t, p in data.figures if not t.startswith("plot:")]
    plots = [(t.removeprefix("plot:"), p) for t, p in data.figures if t.startswith("plot:")]
    if maps:
        parts.append("<h2>Maps</h2><div class='figs'>")
        parts += [f"<figure>{_img(p, t)}<figcaption>{html.escape(t)}</figcaption></figure>" for t, p in maps]
        parts.append("</div>")
    if data.metrics:
        parts.append(_metrics_html(data.metrics, data.class_names))
    accuracy_plots = [(t, p) for t, p in plots if t.startswith("Confusion")]
    other_plots = [(t, p) for t, p in plots if not t.startswith("Confusion")]
    if accuracy_plots:
        parts.append("<div class='figs'>")
        parts += [_plot_figure(p, t) for t, p in accuracy_plots]
        parts.append("</div>")
    parts.append(_suggestions_html(data))
    if other_plots:
        parts.append("<h2>Training</h2><div class='figs'>")
        parts += [_plot_figure(p, t) for t, p in other_plots]
        parts.append("</div>")
    if data.areas_km2:
        total = sum(a for _, _, a in data.areas_km2) or 1.0
        parts.append("<h2>Class areas</h2><table><tr><th>class</th><th>km²</th><th>share</th></tr>")
        for name, color, area in data.areas_km2:
            parts.append(f"<tr><td><span class='sw' style='background:{color}'></span>{html.escape(name)}</td>"
                         f"<td>{area:,.3f}</td><td>{100 * area / total:.1f}%</td></tr>")
        parts.append(f"<tr><th>total</th><th>{total:,.3f}</th><th>100%</th></tr></table>")
    if data.steps:
        parts.append("<h2>Run</h2><table><tr><th>step</th><th>status</th><th>seconds</th></tr>")
        for name, info in data.steps.items():
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(info.get('status', '')))}</td>"
                         f"<td>{float(info.get('seconds', 0.0)):.1f}</td></tr>")
        parts.append("</table>")
    if data.outputs:
        parts.append("<h2>Outputs</h2><ul>")
        for path in data.outputs:
            rel = os.path.relpath(path, report_dir)
            parts.append(f"<li><a href='{html.escape(rel)}'>{html.escape(rel)}</a></li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _metrics_html(metrics: dict[str, Any], names: list[str]) -> str:
    split = metrics.get("split", "")
    out = [f"<h2>Accuracy{(' (' + html.escape(str(split)) + ' split)') if split else ''}</h2><p>"]
    for key, label in (("miou", "macro mIoU"), ("oa", "overall accuracy"), ("kappa", "Cohen's κ")):
        if metrics.get(key) is not None:
            out.append(f"<span class='kpi'>{label}: <b>{100 * float(metrics[key]):.1f}%</b></span>"
                       if key != "kappa" else f"<span class='kpi'>{label}: <b>{float(metrics[key]):.3f}</b></span>")
    out.append("</p>")
    rows = class_rows(metrics, names)
    if rows:
        out.append("<table><tr><th>class</th><th>IoU</th><th>reference pixels</th><th>predicted pixels</th></tr>")
        for name, iou, reference, predicted in rows:
            cells = ["–" if iou is None else f"{100 * iou:.1f}%",
                     "–" if reference is None else f"{reference:,}", "–" if predicted is None else f"{predicted:,}"]
            out.append(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        out.append("</table>")
    return "".join(out)


def class_rows(metrics: dict[str, Any], names: list[str]) -> list[tuple[str, float | None, int | None, int | None]]:
    """Per class: (name, IoU, reference pixels, predicted pixels) from an evaluation's metrics.

    The confusion matrix's rows are the reference (true) classes and its columns the predicted ones, in the
    order of the metrics' ``classes`` (else ``names``); the pixel counts are None when there is no matrix.
    """
    per_class = metrics.get("iou") or {}
    order = list(metrics.get("classes") or names or per_class)
    matrix = metrics.get("confusion_matrix")
    reference: dict[str, int] = {}
    predicted: dict[str, int] = {}
    if matrix is not None and len(matrix) == len(order) and all(len(row) == len(order) for row in matrix):
        reference = {n: int(sum(row)) for n, row in zip(order, matrix, strict=True)}
        predicted = {n: int(sum(row[j] for row in matrix)) for j, n in enumerate(order)}
    rows = []
    for name in order:
        iou = per_class.get(name)
        rows.append((name, None if iou is None else float(iou), reference.get(name), predicted.get(name)))
    return rows


def _suggestions_html(data: ReportData) -> str:
    """Where to label next: the maps of the suggestions and their table ("" when the run suggested nothing)."""
    if not data.suggestions:
        return ""
    out = ["<h2>Where to label next</h2><div class='figs'>"]
    out += [f"<figure>{_img(p, t)}<figcaption>{html.escape(t)}</figcaption></figure>" for t, p in
            data.suggestion_maps]
    out.append("</div><table><tr><th>rank</th><th>score</th><th>uncertainty</th><th>predicted classes</th>"
               "<th>centre x</th><th>centre y</th><th>scene</th></tr>")
    for row in data.suggestions:
        out.append(f"<tr><td>{row['rank']}</td><td>{row['score']:.3f}</td><td>{row['uncertainty']:.3f}</td>"
                   f"<td style='text-align:left'><span class='sw' style='background:{row['color']}'></span>"
                   f"{html.escape(row['mix'])}</td><td>{row['x']:,.1f}</td><td>{row['y']:,.1f}</td>"
                   f"<td>{html.escape(row['scene'])}</td></tr>")
    out.append("</table>")
    return "".join(out)


def write_report(data: ReportData, report_dir: Path) -> Path:
    """Write ``report_dir/report.html`` atomically and return its path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    path = report_dir / "report.html"
    write_text_atomic(path, render(data, report_dir))
    return path
