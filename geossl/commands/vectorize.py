"""``geossl vectorize``: class raster → polygons for GIS (GeoPackage with QGIS style, FlatGeobuf, GeoJSON...)."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import is_quiet, scheduler_options


@click.command()
@click.argument("class_raster", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Output vector file; the format follows the suffix unless --format is given.")
@click.option("--min-area", type=float, default=0.0, show_default=True,
              help="Sieve: merge regions smaller than this (map units², e.g. m²) into a neighbour first.")
@click.option("--simplify", type=float, default=0.0, show_default=True,
              help="Simplify the polygons as one coverage with this tolerance (map units); 0 keeps pixel edges.")
@click.option("--confidence", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A confidence raster on the same grid: adds each polygon's mean confidence.")
@click.option("--format", "fmt", metavar="gpkg|fgb|geojson|parquet", default=None,
              help="Output format [default: from the --out suffix].")
@click.option("--classes", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Take class names and colours from this data manifest instead of the raster's metadata.")
@click.option("--overwrite", is_flag=True, help="Replace --out (and its .qml) if they exist.")
@scheduler_options
@click.pass_context
def vectorize(ctx: click.Context, class_raster: Path, out: Path, min_area: float, simplify: float,
              confidence: Path | None, fmt: str | None, classes: Path | None, overwrite: bool, scheduler: str | None,
              workers: int | None) -> None:
    """Turn a CLASS_RASTER (ingest labels, predict output) into polygons with class, area and confidence."""
    from geossl.vectorize.run import VectorizeOptions
    from geossl.vectorize.run import vectorize as run_vectorize

    options = VectorizeOptions(out=out, format=fmt, min_area=min_area, simplify=simplify, confidence=confidence,
                               classes=classes, overwrite=overwrite, scheduler=scheduler, workers=workers,
                               quiet=is_quiet(ctx))
    summary = run_vectorize(class_raster, options)
    click.echo(str(summary.path))
