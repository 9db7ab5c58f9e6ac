"""``geossl ingest``: manifest → aligned COGs, band statistics and a catalog."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options


@click.command(cls=ModelCommand, options_model="geossl.ingest.options:IngestOptions")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def ingest(ctx: click.Context, manifest: Path) -> None:
    """Align the MANIFEST's imagery and labels, write COGs, band statistics and a catalog."""
    from geossl.ingest.options import IngestOptions
    from geossl.ingest.run import ingest as run_ingest

    click.echo(str(run_ingest(manifest, parse_options(ctx, IngestOptions, quiet=is_quiet(ctx)))))
