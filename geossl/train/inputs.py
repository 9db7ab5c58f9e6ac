"""Checks at the edge of training and evaluation: the catalog matches the manifest, a model matches both."""

from __future__ import annotations

import logging
from pathlib import Path

from geossl.catalog import CATALOG_NAME, Catalog, load_catalog
from geossl.errors import InputError
from geossl.manifest import Manifest, load_manifest
from geossl.models import ModelBundle

log = logging.getLogger(__name__)


def ensure_catalog(manifest_path: Path, catalog_dir: Path, data_root: Path | None, quiet: bool
                   ) -> tuple[Manifest, Catalog, Path]:
    """The manifest and its ingested catalog; ingests first when ``catalog_dir`` holds no catalog yet.

    An existing catalog must describe the manifest's classes and bands (same ids, names and order).
    """
    manifest = load_manifest(manifest_path)
    root = catalog_dir.absolute()
    if not (root / CATALOG_NAME).is_file():
        from geossl.ingest.options import IngestOptions
        from geossl.ingest.run import ingest

        log.info("no catalog in %s: ingesting %s first", root, manifest_path)
        ingest(manifest_path, IngestOptions(out=root, data_root=data_root, quiet=quiet))
    catalog = load_catalog(root)
    where = root / CATALOG_NAME
    if [(c.id, c.name) for c in catalog.classes] != [(c.id, c.name) for c in manifest.classes]:
        raise InputError(where, f"classes differ from manifest {manifest_path} (ingested from another manifest? "
                                "run `geossl ingest` again)")
    if manifest.imagery.bands is not None and list(manifest.imagery.bands) != list(catalog.bands):
        raise InputError(where, f"bands {catalog.bands} differ from manifest {manifest_path} "
                                f"({manifest.imagery.bands})")
    return manifest, catalog, root


def check_bundle(bundle: ModelBundle, checkpoint: Path, manifest_path: Path, manifest: Manifest,
                 catalog: Catalog) -> None:
    """A model must predict the manifest's classes from the catalog's bands, in the same order."""
    mine = [(c.id, c.name) for c in bundle.classes]
    theirs = [(c.id, c.name) for c in manifest.classes]
    if mine != theirs:
        raise InputError(checkpoint, f"model classes {[n for _, n in mine]} do not match manifest {manifest_path} "
                                     f"classes {[n for _, n in theirs]}")
    if list(bundle.bands) != list(catalog.bands):
        raise InputError(checkpoint, f"model bands {bundle.bands} do not match the imagery's bands {catalog.bands}")
