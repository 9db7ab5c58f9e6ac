"""``geossl run`` and ``geossl demo``: regional pipelines, idempotent and resumable."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from geossl.commands.options import is_quiet
from geossl.pipeline.steps import STEP_ORDER

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


def execute(pipeline: Path, run_dir: Path | None, data_root: Path | None, scheduler: str | None,
            force: tuple[str, ...], quiet: bool) -> dict:
    """Load, lock, run and summarise a pipeline; the run's exit code is decided by the CLI group."""
    from geossl.errors import InputError
    from geossl.pipeline.config import load_pipeline
    from geossl.pipeline.context import RunContext
    from geossl.pipeline.lock import RunLocked
    from geossl.pipeline.runner import SUMMARY_NAME, run_pipeline

    config = load_pipeline(pipeline, data_root=data_root, run_dir=run_dir, scheduler=scheduler)
    assert config.run_dir is not None
    try:
        with run_log(config.run_dir) as log_path:
            log.info("run %s of %s in %s (log %s)", config.name, pipeline, config.run_dir, log_path)
            summary = run_pipeline(RunContext(config, quiet=quiet), set(force))
    except RunLocked as exc:
        raise InputError(exc.run_dir, f"another geossl run is using this run directory ({exc.holder}); "
                                      "wait for it or choose another --run-dir") from None
    report = config.run_dir / "report" / "report.html"
    log.info("finished in %.1f s: report %s, summary %s", summary["seconds"], report,
             config.run_dir / SUMMARY_NAME)
    return summary


@click.command()
@click.argument("pipeline", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Run directory (outputs, state, logs) [default: the pipeline's run_dir, else runs/NAME].")
@click.option("--data-root", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the manifest's data lies (overrides the pipeline's data_root).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="An existing dask.distributed scheduler (overrides the pipeline's).")
@click.option("--force", multiple=True, type=click.Choice(STEP_ORDER),
              help="Redo this step even if it is up to date (repeatable).")
@click.pass_context
def run(ctx: click.Context, pipeline: Path, run_dir: Path | None, data_root: Path | None, scheduler: str | None,
        force: tuple[str, ...]) -> None:
    """Run PIPELINE: ingest → train → predict → vectorize → evaluate → report, skipping what is done."""
    summary = execute(pipeline, run_dir, data_root, scheduler, force, is_quiet(ctx))
    click.echo(str(Path(summary["run_dir"]) / "report" / "report.html"))


@click.command()
@click.option("--run-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("demo_out"),
              show_default=True, help="Run directory.")
@click.pass_context
def demo(ctx: click.Context, run_dir: Path) -> None:
    """Run the built-in demo (pipelines/demo.yaml) on a synthetic scene, end to end."""
    if not DEMO_PIPELINE.is_file():
        click.echo(f"Error: {DEMO_PIPELINE}: the demo pipeline ships with the source tree, not found", err=True)
        sys.exit(2)
    summary = execute(DEMO_PIPELINE, run_dir, None, None, (), is_quiet(ctx))
    out = Path(summary["run_dir"])
    click.echo(f"report:  {out / 'report' / 'report.html'}")
    for step, files in summary["outputs"].items():
        if step in ("predict", "vectorize", "evaluate"):
            for rel in files:
                click.echo(f"{step + ':':9s}{out / rel}")
