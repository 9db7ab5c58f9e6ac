"""``geossl pretrain``: self-supervised pretraining of the encoder on a catalog's imagery (no labels)."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options, shared_option
from geossl.config import CatalogOption, DataRootOption


@click.command(cls=ModelCommand, options_model="geossl.pretrain.config:PretrainConfig")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@shared_option("catalog", CatalogOption)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output folder: encoder.pt (for `geossl train --weights`), config.yaml, logs/.")
@shared_option("data_root", DataRootOption, None)
@click.pass_context
def pretrain(ctx: click.Context, manifest: Path, catalog: Path, out: Path, data_root: Path | None) -> None:
    """Pretrain the segmentation encoder on the MANIFEST's ingested imagery, without labels."""
    from geossl.pretrain.config import PretrainConfig
    from geossl.pretrain.run import pretrain as run_pretrain

    config = parse_options(ctx, PretrainConfig)
    click.echo(str(run_pretrain(manifest, catalog, out, config, data_root, is_quiet(ctx))))
