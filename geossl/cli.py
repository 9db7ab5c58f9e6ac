"""The ``geossl`` command line: one click group, shared options, one-line errors.

Exit codes: 0 success, 2 bad input (the message names the file or field and the problem), 1 internal error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from geossl import __version__
from geossl.errors import InputError

log = logging.getLogger("geossl")
F = TypeVar("F", bound=Callable[..., Any])


def _setup_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        force=True)
    for noisy in ("rasterio", "fiona", "pyogrio", "matplotlib", "PIL", "urllib3", "lightning", "torchgeo"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def scheduler_options(func: F) -> F:
    """``--scheduler`` and ``--workers``, shared by every command that runs on Dask."""
    func = click.option("--workers", type=click.IntRange(min=1), default=None,
                        help="Threads (or processes) of the local Dask cluster [default: one per core].")(func)
    func = click.option("--scheduler", metavar="ADDRESS", default=None,
                        help="Use an existing dask.distributed scheduler (tcp://host:port) instead of a "
                             "LocalCluster.")(func)
    return func


def data_root_option(func: F) -> F:
    """``--data-root``: where the manifest's relative paths are resolved."""
    return click.option("--data-root", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help="Resolve the manifest's paths under this folder instead of the manifest's own.")(func)


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
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: int) -> None:
    """Land-cover mapping from satellite and aerial imagery with few labels."""
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbose - quiet
    _setup_logging(verbose - quiet)


@main.command()
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--size", type=click.IntRange(min=64), default=1024, show_default=True,
              help="Scene width and height in pixels.")
@click.option("--bands", type=click.IntRange(min=1, max=64), default=4, show_default=True, help="Number of bands.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same scene).")
@click.option("--tile", type=click.IntRange(min=16), default=512, show_default=True,
              help="Internal tile size of the written GeoTIFFs.")
@click.option("--resolution", type=float, default=10.0, show_default=True, help="Pixel size in metres.")
@click.option("--crs", default="EPSG:32633", show_default=True, help="CRS of the scene.")
@click.option("--no-border", is_flag=True, help="No nodata border: every pixel is valid.")
def synth(out_dir: Path, size: int, bands: int, seed: int, tile: int, resolution: float, crs: str,
          no_border: bool) -> None:
    """Write a synthetic scene (scene.tif, labels.tif, manifest.yaml) into OUT_DIR."""
    from geossl.synth import SynthConfig, write_scene

    try:
        from rasterio.crs import CRS

        CRS.from_user_input(crs)
    except Exception as exc:  # noqa: BLE001
        raise click.BadParameter(f"unknown CRS '{crs}'", param_hint="--crs") from exc
    paths = write_scene(out_dir, SynthConfig(size=size, bands=bands, seed=seed, tile=tile, resolution=resolution,
                                             crs=crs, border=not no_border))
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))


@main.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output folder for COGs and catalog.json.")
@data_root_option
@scheduler_options
@click.option("--compress", type=click.Choice(["ZSTD", "DEFLATE", "LZW", "NONE"], case_sensitive=False),
              default="ZSTD", show_default=True, help="COG compression.")
@click.option("--force", is_flag=True, help="Ingest again even if the catalog is up to date.")
@click.pass_context
def ingest(ctx: click.Context, manifest: Path, out: Path, data_root: Path | None, scheduler: str | None,
           workers: int | None, compress: str, force: bool) -> None:
    """Align the MANIFEST's imagery and labels, write COGs, band statistics and a catalog."""
    from geossl.ingest.run import IngestOptions
    from geossl.ingest.run import ingest as run_ingest

    options = IngestOptions(out=out, data_root=data_root, scheduler=scheduler, workers=workers,
                            compress=compress.upper(), force=force, quiet=ctx.obj["verbosity"] < 0)
    path = run_ingest(manifest, options)
    click.echo(str(path))


if __name__ == "__main__":
    main()
