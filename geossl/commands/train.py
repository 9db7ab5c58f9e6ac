"""``geossl train``: semi-supervised training on an ingested catalog."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import catalog_option, data_root_option, is_quiet, threads_option


@click.command()
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@catalog_option
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Run folder: checkpoints, logs, model.pt.")
@click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML training config (TrainConfig fields); flags given on the command line override it.")
@click.option("--strategy", default=None,
              help="supervised, fixmatch, unimatch, crossview or dwl [default: supervised].")
@click.option("--arch", default=None, help="unet or deeplabv3plus [default: unet].")
@click.option("--encoder", default=None, help="timm (tu-*) or smp encoder [default: tu-resnet18].")
@click.option("--weights", default=None, help="'none' (from scratch) or a local encoder weights file.")
@click.option("--patch-size", type=int, default=None, help="Training window in pixels, a multiple of 32 [256].")
@click.option("--batch-size", type=int, default=None, help="Labeled patches per step [8].")
@click.option("--unlabeled-batch-size", type=int, default=None, help="Unlabeled patches per step [batch size].")
@click.option("--steps-per-epoch", type=int, default=None, help="Steps between validations/checkpoints [100].")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps.")
@click.option("--max-epochs", type=int, default=None, help="Stop after this many epochs [20 without --max-steps].")
@click.option("--lr", type=float, default=None, help="AdamW learning rate [1e-3].")
@click.option("--label-fraction", type=float, default=None,
              help="Redraw the labeled train regions: this share of the train regions keeps labels.")
@click.option("--label-selection", type=click.Choice(["random", "cover_classes"]), default=None,
              help="How --label-fraction picks them: seeded random, or every class covered first [random].")
@click.option("--seed", type=int, default=None, help="Random seed [0].")
@click.option("--accelerator", default=None, help="auto, cpu, gpu... (Lightning) [auto].")
@click.option("--devices", default=None, help="Devices (processes) to train on, or 'auto' [1].")
@click.option("--workers", type=int, default=None, help="DataLoader worker processes [0].")
@threads_option
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@data_root_option
@click.pass_context
def train(ctx: click.Context, manifest: Path, catalog: Path, out: Path, config_file: Path | None,
          resume: bool, data_root: Path | None, **flags: object) -> None:
    """Train a segmentation model on the MANIFEST's ingested catalog."""
    from geossl.train.config import build_config
    from geossl.train.run import train as run_train

    devices = flags.get("devices")
    if isinstance(devices, str) and devices.isdigit():
        flags["devices"] = int(devices)
    config = build_config(config_file, flags)
    click.echo(str(run_train(manifest, config, out, catalog, data_root, resume, is_quiet(ctx))))
