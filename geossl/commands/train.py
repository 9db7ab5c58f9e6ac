"""``geossl train``: semi-supervised training on an ingested catalog."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import GIVEN, ModelCommand, is_quiet, parse_options, shared_option
from geossl.config import CatalogOption, DataRootOption


@click.command(cls=ModelCommand, options_model="geossl.train.config:TrainConfig")
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@shared_option("catalog", CatalogOption)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Run folder: checkpoints, logs, model.pt.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML training config (TrainConfig fields); flags given on the command line override it.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--strategy-option", "strategy_options", multiple=True, default=None, metavar="KEY=VALUE",
              help="One option of the strategy (repeat the flag per option), e.g. merge_alpha=0.5 or teacher=ema; "
                   "the value is read as YAML.")
@shared_option("data_root", DataRootOption, None)
@click.pass_context
def train(ctx: click.Context, manifest: Path, catalog: Path, out: Path, config_file: Path | None,
          resume: bool, strategy_options: tuple[str, ...], data_root: Path | None) -> None:
    """Train a segmentation model on the MANIFEST's ingested catalog."""
    from geossl.config import read_yaml
    from geossl.train.config import TrainConfig, with_strategy_flags
    from geossl.train.run import train as run_train

    base = read_yaml(config_file) if config_file is not None else {}
    base = with_strategy_flags(base, ctx.meta[GIVEN].pop("strategy", None), strategy_options)
    config = parse_options(ctx, TrainConfig, base, config_file if config_file is not None else "options")
    click.echo(str(run_train(manifest, config, out, catalog, data_root, resume, is_quiet(ctx))))
