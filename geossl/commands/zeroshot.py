"""``geossl zeroshot``: a prior map of the catalog's scenes from SAM masks named by CLIP (local weights only)."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options, shared_option
from geossl.config import CatalogOption, DataRootOption


@click.command(cls=ModelCommand, options_model="geossl.zeroshot.options:ZeroshotOptions")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@shared_option("catalog", CatalogOption)
@shared_option("data_root", DataRootOption, None)
@click.pass_context
def zeroshot(ctx: click.Context, manifest: Path, catalog: Path, data_root: Path | None) -> None:
    """Label the MANIFEST's imagery zero-shot: SAM's masks, each named by its nearest CLIP class prompt."""
    from geossl.zeroshot.options import ZeroshotOptions
    from geossl.zeroshot.run import zeroshot as run_zeroshot

    options = parse_options(ctx, ZeroshotOptions)
    click.echo(str(run_zeroshot(manifest, catalog, data_root, options, is_quiet(ctx))))
