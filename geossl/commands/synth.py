"""``geossl synth``: write a synthetic scene."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from geossl.commands.options import ModelCommand, parse_options

log = logging.getLogger("geossl")


@click.command(cls=ModelCommand, options_model="geossl.synth:SynthConfig")
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.pass_context
def synth(ctx: click.Context, out_dir: Path) -> None:
    """Write a synthetic scene (scene.tif, labels.tif, manifest.yaml) into OUT_DIR."""
    from geossl.synth import SynthConfig, write_scene

    paths = write_scene(out_dir, parse_options(ctx, SynthConfig))
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
