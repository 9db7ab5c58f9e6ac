"""``geossl run`` and ``geossl demo``: regional pipelines, idempotent and resumable."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options

if TYPE_CHECKING:
    from geossl.pipeline.config import RunOptions

log = logging.getLogger("geossl")
DEMO_PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "demo.yaml"


@contextmanager
def run_log(run_dir: Path) -> Iterator[Path]:
    """Copy every log record of the run into ``RUN_DIR/logs/run-<UTC time>.log``."""
    folder = run_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(min(previous, logging.INFO))
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def execute(pipeline: Path, options: RunOptions, quiet: bool) -> dict[str, Any]:
    """Load, lock, run and summarise a pipeline; the run's exit code is decided by the CLI group."""
    from geossl.errors import InputError
    from geossl.pipeline.config import load_pipeline
    from geossl.pipeline.context import RunContext
    from geossl.pipeline.lock import RunLocked
    from geossl.pipeline.runner import SUMMARY_NAME, run_pipeline

    config = load_pipeline(pipeline, data_root=options.data_root, run_dir=options.run_dir,
                           scheduler=options.scheduler)
    assert config.run_dir is not None
    try:
        with run_log(config.run_dir) as log_path:
            log.info("run %s of %s in %s (log %s)", config.name, pipeline, config.run_dir, log_path)
            summary = run_pipeline(RunContext(config, quiet=quiet), set(options.force))
    except RunLocked as exc:
        raise InputError(exc.run_dir, f"another geossl run is using this run directory ({exc.holder}); "
                                      "wait for it or choose another --run-dir") from None
    log.info("finished in %.1f s: report %s, summary %s", summary["seconds"], report_path(summary),
             config.run_dir / SUMMARY_NAME)
    return summary


def report_path(summary: dict[str, Any]) -> Path:
    """The report page a run wrote: the report step's output, as its summary lists it."""
    (page,) = summary["outputs"]["report"]
    return Path(summary["run_dir"], page)


@click.command(cls=ModelCommand, options_model="geossl.pipeline.config:RunOptions")
@click.argument("pipeline", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def run(ctx: click.Context, pipeline: Path) -> None:
    """Run PIPELINE: ingest → train → predict → vectorize → evaluate → report, skipping what is done."""
    from geossl.pipeline.config import RunOptions

    summary = execute(pipeline, parse_options(ctx, RunOptions), is_quiet(ctx))
    click.echo(str(report_path(summary)))


@click.command(cls=ModelCommand, options_model="geossl.pipeline.config:DemoOptions")
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the built-in demo (pipelines/demo.yaml) on a synthetic scene, end to end."""
    from geossl.pipeline.config import DemoOptions, RunOptions

    if not DEMO_PIPELINE.is_file():
        click.echo(f"Error: {DEMO_PIPELINE}: the demo pipeline ships with the source tree, not found", err=True)
        sys.exit(2)
    options = parse_options(ctx, DemoOptions)
    summary = execute(DEMO_PIPELINE, RunOptions(run_dir=options.run_dir), is_quiet(ctx))
    out = Path(summary["run_dir"])
    click.echo(f"report:  {report_path(summary)}")
    for step, files in summary["outputs"].items():
        if step in ("predict", "vectorize", "evaluate"):
            for rel in files:
                click.echo(f"{step + ':':9s}{out / rel}")
