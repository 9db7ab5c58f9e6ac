"""``geossl --progress``: progress bars also write ``geossl-progress: PERCENT WHAT`` lines that only ever grow."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
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
