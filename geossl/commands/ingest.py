"""``geossl ingest``: manifest → aligned COGs, band statistics and a catalog."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import data_root_option, is_quiet, scheduler_options


@click.command()
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
                            compress=compress.upper(), force=force, quiet=is_quiet(ctx))
    click.echo(str(run_ingest(manifest, options)))
