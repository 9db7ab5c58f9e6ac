"""``geossl evaluate``: metrics of a trained model on one split."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options, shared_option
from geossl.config import CatalogOption


@click.command(cls=ModelCommand, options_model="geossl.train.config:EvaluateOptions")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@shared_option("catalog", CatalogOption)
@click.pass_context
def evaluate(ctx: click.Context, checkpoint: Path, manifest: Path, catalog: Path) -> None:
    """Evaluate CHECKPOINT (model.pt or a .ckpt) on the MANIFEST's catalog: mIoU, IoU, OA, kappa."""
    from geossl.train.config import EvaluateOptions
    from geossl.train.evaluate import evaluate as run_evaluate

    options = parse_options(ctx, EvaluateOptions, quiet=is_quiet(ctx))
    metrics = run_evaluate(checkpoint, manifest, catalog, options)
    click.echo(f"{options.split}: mIoU {metrics['miou']:.4f} OA {metrics['oa']:.4f} kappa {metrics['kappa']:.4f} "
               f"-> {options.folder(checkpoint)}")
