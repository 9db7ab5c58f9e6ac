"""``geossl pretrain``: self-supervised pretraining of the encoder on a catalog's imagery (no labels)."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import is_quiet
from geossl.pretrain.config import option_help


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Ingest output folder (catalog.json) of MANIFEST; its imagery is pretrained on.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Output folder: encoder.pt (for `geossl train --weights`), config.yaml, logs/.")
@click.option("--method", default=None, help=option_help("method"))
@click.option("--encoder", default=None, help=option_help("encoder"))
@click.option("--patch-size", type=int, default=None, help=option_help("patch_size"))
@click.option("--batch-size", type=int, default=None, help=option_help("batch_size"))
@click.option("--max-steps", type=int, default=None, help=option_help("max_steps"))
@click.option("--lr", type=float, default=None, help=option_help("lr"))
@click.option("--weight-decay", type=float, default=None, help=option_help("weight_decay"))
@click.option("--warmup", type=float, default=None, help=option_help("warmup"))
@click.option("--seed", type=int, default=None, help=option_help("seed"))
@click.option("--accelerator", default=None, help=option_help("accelerator"))
@click.option("--workers", type=int, default=None, help=option_help("workers"))
@click.option("--threads", type=int, default=None, help=option_help("threads"))
@click.pass_context
def pretrain(ctx: click.Context, manifest: Path, catalog: Path, out: Path, **flags: object) -> None:
    """Pretrain the segmentation encoder on the MANIFEST's ingested imagery, without labels."""
    from geossl.pretrain.config import build_config
    from geossl.pretrain.run import pretrain as run_pretrain

    click.echo(str(run_pretrain(manifest, catalog, out, build_config(flags), is_quiet(ctx))))
