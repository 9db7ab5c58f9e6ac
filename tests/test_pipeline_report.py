"""The run report: per-class reference pixels from the evaluation, training curves drawn at a readable size."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from geossl.pipeline.quicklook import curves_plot
from geossl.pipeline.report import PAGE_WIDTH_PX, ReportData, class_rows, render
from geossl.train.metrics import segmentation_metrics
from tests.conftest import ROOT, run_cli
from tests.predict_support import make_bundle, save_checkpoint


def _table_rows(html: str) -> dict[str, list[str]]:
    """The per-class accuracy table: {class: [IoU, reference pixels, predicted pixels]}."""
    table = html.split("<th>reference pixels</th>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>", table)
    return {name: list(cells) for name, *cells in rows}


def _count(cell: str) -> int:
    return int(cell.replace(",", ""))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small run with an (untrained) model, evaluated on the test split and reported."""
    folder = tmp_path_factory.mktemp("report")
    checkpoint = save_checkpoint(folder / "model.pt", make_bundle(patch_size=64, overlap=16))
    config = {"name": "r", "manifest": str(ROOT / "data_manifests" / "synthetic.yaml"),
              "steps": {"synth": {"size": 256}, "train": {"checkpoint": str(checkpoint)},
                        "predict": {"batch_size": 4}, "evaluate": {"split": "test"},
                        "report": {"quicklook_size": 128}}}
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(config))
    result = run_cli("run", folder / "pipeline.yaml", "--run-dir", folder / "run")
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_reference_pixels_come_from_the_evaluations_confusion_matrix(run_dir):
    metrics = json.loads((run_dir / "evaluate" / "metrics.json").read_text())
    matrix = np.asarray(metrics["confusion_matrix"])
    rows = _table_rows((run_dir / "report" / "report.html").read_text())
    assert list(rows) == metrics["classes"]
    reference = [_count(rows[name][1]) for name in metrics["classes"]]
    predicted = [_count(rows[name][2]) for name in metrics["classes"]]
    assert reference == matrix.sum(axis=1).tolist() and predicted == matrix.sum(axis=0).tolist()
    assert sum(reference) == metrics["pixels"] > 0


def test_a_report_rebuilt_without_re_evaluating_keeps_the_column(run_dir):
    before = _table_rows((run_dir / "report" / "report.html").read_text())
    pipeline = run_dir.parent / "pipeline.yaml"
    result = run_cli("run", pipeline, "--run-dir", run_dir, "--force", "report")
    assert result.exit_code == 0, result.output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"]["evaluate"]["status"] == "skipped"
    assert _table_rows((run_dir / "report" / "report.html").read_text()) == before


def test_class_rows_of_a_known_matrix():
    cm = np.array([[5, 1, 0], [2, 7, 0], [0, 0, 0]])
    rows = class_rows(segmentation_metrics(cm, ["a", "b", "c"]) | {"classes": ["a", "b", "c"]}, [])
    assert rows == [("a", 5 / 8, 6, 7), ("b", 7 / 10, 9, 8), ("c", None, 0, 0)]
    html = render(ReportData(title="t", metrics=segmentation_metrics(cm, ["a", "b", "c"]),
                             class_names=["a", "b", "c"]), Path("."))
    assert _table_rows(html) == {"a": ["62.5%", "6", "7"], "b": ["70.0%", "9", "8"], "c": ["–", "0", "0"]}


def test_training_curves_are_shown_at_their_own_size():
    steps = np.arange(0, 400, 10.0)
    series = {"train_loss": [(s, 2.0 / (1 + s / 50)) for s in steps], "val_miou": [(s, s / 500) for s in steps[::5]],
              "pseudo_used_share": [(s, 0.5) for s in steps], "pseudo_accuracy": [(s, 0.8) for s in steps]}
    png = curves_plot(series, [["train_loss"], ["val_miou"], ["pseudo_used_share", "pseudo_accuracy"]],
                      ["training loss", "validation mIoU", "pseudo-labels"])
    assert png is not None
    width, height = Image.open(io.BytesIO(png)).size
    # Two panels a row: each about 500 px wide, and the whole no wider than the page (so it is not shrunk).
    assert 900 <= width <= PAGE_WIDTH_PX and height >= 2 * 300
    html = render(ReportData(title="t", figures=[("plot:Training curves", png)]), Path("."))
    assert "<figure class='plot'>" in html and "figure.plot,figure.plot img{max-width:100%}" in html
