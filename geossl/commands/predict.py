"""``geossl predict``: a checkpoint and scenes → class, confidence (and probability) COGs with styles."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options


@click.command(cls=ModelCommand, options_model="geossl.predict.options:PredictOptions")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("scenes", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def predict(ctx: click.Context, checkpoint: Path, scenes: tuple[Path, ...]) -> None:
    """Predict land cover over SCENES with CHECKPOINT; write COGs, QGIS styles and STAC Items into --out.

    Blocks (column strips of wide scenes) and scenes run as Dask tasks; on an existing cluster the checkpoint,
    scenes and --out must be on paths its workers can read and write.
    """
    from geossl.predict.options import PredictOptions
    from geossl.predict.run import predict as run_predict

    options = parse_options(ctx, PredictOptions, quiet=is_quiet(ctx))
    for item in run_predict(checkpoint, list(scenes), options):
        click.echo(str(options.out / item["assets"]["classes"]["href"]))
