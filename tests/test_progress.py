"""``geossl --progress``: progress bars also write ``geossl-progress: PERCENT WHAT`` lines that only ever grow."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from geossl import progress
from geossl.cli import main

LINE = re.compile(rf"^{progress.PREFIX} (\d+\.\d) (.+)$")


def progress_lines(stderr: str) -> list[tuple[float, str]]:
    """The (percent, what) of every progress line of ``stderr``."""
    return [(float(m[1]), m[2]) for m in map(LINE.match, stderr.splitlines()) if m]


def test_a_command_writes_progress_lines_only_when_asked(synth_dir: Path, tmp_path: Path):
    args = ["vectorize", str(synth_dir / "labels.tif"), "--workers", "1"]
    plain = CliRunner().invoke(main, ["-q", *args, "--out", str(tmp_path / "plain.gpkg")])
    assert plain.exit_code == 0 and progress.PREFIX not in plain.stderr
    result = CliRunner().invoke(main, ["-q", "--progress", *args, "--out", str(tmp_path / "lines.gpkg")])
    assert result.exit_code == 0, result.output
    assert progress_lines(result.stderr) == [(0.0, "vectorize"), (100.0, "vectorize")]  # the scene is one tile


def test_stages_share_the_whole_and_bars_run_over_their_stage(capsys: pytest.CaptureFixture[str]):
    progress.enable()
    try:
        with progress.stage(1, 4, "second"):
            with progress.ProgressBar(2, "half", quiet=True) as bar:
                bar.update()
                bar.update()
        progress.report(1.0, "done")
    finally:
        progress.enable(False)
    assert progress_lines(capsys.readouterr().err) == [(25.0, "second"), (25.0, "half"), (37.5, "half"),
                                                       (50.0, "half"), (100.0, "done")]


def test_sigterm_stops_a_training_as_ctrl_c_does(synth_catalog: Path, tmp_path: Path):
    """A program that runs geossl (the QGIS plugin's Cancel) stops it with SIGTERM: it ends, and exports nothing."""
    from tests.conftest import ROOT
    from tests.test_suggest import MANIFEST, TINY

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "geossl.cli", "--progress", "train", str(MANIFEST), "--catalog", str(synth_catalog),
         "--out", str(out), "--config", str(config), "--max-steps", "1000000"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(f"{progress.PREFIX} ") and line.rstrip().endswith(" training"):
            break
    process.send_signal(signal.SIGTERM)
    process.stderr.read()
    assert process.wait(timeout=120) != 0
    assert (out / "config.yaml").is_file() and not (out / "model.pt").exists()  # it had begun


def test_the_qgis_plugin_reads_what_geossl_writes():
    """The plugin cannot import geossl (no torch in QGIS): its copies of geossl's names must match."""
    import importlib.util

    from geossl.io.layers import LABEL_LAYER
    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("plugin_protocol",
                                                  ROOT / "qgis_plugin" / "geossl_processing" / "protocol.py")
    assert spec is not None and spec.loader is not None
    protocol = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protocol)
    assert (protocol.PROGRESS_PREFIX, protocol.LABEL_LAYER) == (progress.PREFIX, LABEL_LAYER)
    assert protocol.parse_progress(f"{progress.PREFIX} 42.5 predicting blocks") == (42.5, "predicting blocks")
    assert CliRunner().invoke(main, [protocol.PROGRESS_FLAG, "--help"]).exit_code == 0
    assert protocol.is_error("Error: a.tif: not a raster") and not protocol.is_error("12:00 INFO geossl: Error")
