"""``geossl vectorize``: class raster → polygons for GIS (GeoPackage with QGIS style, FlatGeobuf, GeoJSON...)."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options


@click.command(cls=ModelCommand, options_model="geossl.vectorize.options:VectorizeOptions")
@click.argument("class_raster", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def vectorize(ctx: click.Context, class_raster: Path) -> None:
    """Turn a CLASS_RASTER (ingest labels, predict output) into polygons with class, area and confidence."""
    from geossl.vectorize.options import VectorizeOptions
    from geossl.vectorize.run import vectorize as run_vectorize

    summary = run_vectorize(class_raster, parse_options(ctx, VectorizeOptions, quiet=is_quiet(ctx)))
    click.echo(str(summary.path))
