"""The ``geossl`` command line: one click group, shared options, one-line errors.

Exit codes: 0 success, 2 bad input (the message names the file or field and the problem), 1 internal error,
130 interrupted. SIGTERM interrupts geossl as Ctrl+C does (a program that runs geossl, such as the QGIS plugin,
stops it so): what it had staged is removed and its Dask cluster closed.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Any

import click

from geossl import __version__, progress
from geossl.commands.evaluate import evaluate
from geossl.commands.ingest import ingest
from geossl.commands.predict import predict
from geossl.commands.pretrain import pretrain
from geossl.commands.run import demo, run
from geossl.commands.suggest import suggest
from geossl.commands.synth import synth
from geossl.commands.train import train
from geossl.commands.vectorize import vectorize
from geossl.commands.zeroshot import zeroshot
from geossl.errors import InputError

log = logging.getLogger("geossl")


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        force=True)
    for handler in logging.getLogger().handlers:  # the console keeps this level even if a run log asks for more
        handler.setLevel(level)
    for noisy in ("rasterio", "fiona", "pyogrio", "matplotlib", "PIL", "urllib3", "lightning", "torchgeo"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class GeosslGroup(click.Group):
    """A click group that turns :class:`InputError` into one line and exit 2, anything else into exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand, mapping errors to exit codes."""
        try:
            return super().invoke(ctx)
        except InputError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, exit 1
            log.debug("internal error", exc_info=True)
            first = str(exc).splitlines()[0] if str(exc) else ""
            click.echo(f"Internal error: {type(exc).__name__}: {first} (run with -v for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=GeosslGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="geossl")
@click.option("-v", "--verbose", count=True, help="More logging (-v debug).")
@click.option("-q", "--quiet", count=True, help="Less logging (-q warnings only, -qq errors only).")
@click.option("--progress", "progress_lines", is_flag=True,
              help=f"Write progress as lines on stderr ('{progress.PREFIX} PERCENT WHAT'), for programs that run "
                   "geossl.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: int, progress_lines: bool) -> None:
    """Land-cover mapping from satellite and aerial imagery with few labels."""
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet
    _setup_logging(verbose - quiet)
    progress.enable(progress_lines)
    signal.signal(signal.SIGTERM, _interrupt)


# Each subcommand lives in its own module under geossl/commands; a new command is one line here.
main.add_command(synth)
main.add_command(ingest)
main.add_command(predict)
main.add_command(vectorize)
main.add_command(train)
main.add_command(pretrain)
main.add_command(evaluate)
main.add_command(suggest)
main.add_command(run)
main.add_command(demo)
main.add_command(zeroshot)


if __name__ == "__main__":
    main()
