"""``geossl suggest``: where to label next, as a ranked GeoPackage of windows of the unlabeled area."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import ModelCommand, is_quiet, parse_options, shared_option
from geossl.config import CatalogOption


@click.command(cls=ModelCommand, options_model="geossl.suggest.options:SuggestOptions")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@shared_option("catalog", CatalogOption)
@click.pass_context
def suggest(ctx: click.Context, checkpoint: Path, manifest: Path, catalog: Path) -> None:
    """Suggest windows of the MANIFEST's unlabeled area to label next, ranked by CHECKPOINT's uncertainty.

    Writes --out (a GeoPackage styled for QGIS, and a .qml beside it): the windows, and a layer 'labels' whose
    form offers the manifest's classes. Open it in QGIS, draw labels in the first windows into that layer, name
    FILE.gpkg|layername=labels in the manifest's labels.drawn, ingest and train again; --overwrite keeps what
    was drawn.
    """
    from geossl.suggest.options import SuggestOptions
    from geossl.suggest.run import suggest as run_suggest

    options = parse_options(ctx, SuggestOptions, quiet=is_quiet(ctx))
    result = run_suggest(checkpoint, manifest, catalog, options)
    click.echo(str(result.path))
