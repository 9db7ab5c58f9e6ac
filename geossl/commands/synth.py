"""``geossl synth``: write a synthetic scene."""

from __future__ import annotations

import logging
from pathlib import Path

import click

log = logging.getLogger("geossl")


@click.command()
@click.argument("out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--size", type=click.IntRange(min=64), default=1024, show_default=True,
              help="Scene width and height in pixels.")
@click.option("--bands", type=click.IntRange(min=1, max=64), default=4, show_default=True, help="Number of bands.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same scene).")
@click.option("--tile", type=click.IntRange(min=16), default=512, show_default=True,
              help="Internal tile size of the written GeoTIFFs.")
@click.option("--resolution", type=float, default=10.0, show_default=True, help="Pixel size in metres.")
@click.option("--crs", default="EPSG:32633", show_default=True, help="CRS of the scene.")
@click.option("--no-border", is_flag=True, help="No nodata border: every pixel is valid.")
def synth(out_dir: Path, size: int, bands: int, seed: int, tile: int, resolution: float, crs: str,
          no_border: bool) -> None:
    """Write a synthetic scene (scene.tif, labels.tif, manifest.yaml) into OUT_DIR."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    from geossl.synth import SynthConfig, write_scene

    try:
        CRS.from_user_input(crs)
    except CRSError as exc:
        raise click.BadParameter(f"unknown CRS '{crs}'", param_hint="--crs") from exc
    paths = write_scene(out_dir, SynthConfig(size=size, bands=bands, seed=seed, tile=tile, resolution=resolution,
                                             crs=crs, border=not no_border))
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
