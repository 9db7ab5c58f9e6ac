"""Checks at the edge of training and evaluation: the catalog matches the manifest, a model matches both."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from geossl.catalog import CATALOG_NAME, Catalog, load_catalog
from geossl.data.module import SplitPlan, with_labeled
from geossl.data.regions import Region, split_regions
from geossl.errors import InputError
from geossl.manifest import ClassDef, Manifest, Split, load_manifest
from geossl.models import ModelBundle, TrainedOn

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
    problem = bundle_mismatch(bundle, manifest.classes, catalog.bands, f"manifest {manifest_path}",
                              "the imagery")
    if problem:
        raise InputError(checkpoint, f"model {problem}")


def bundle_mismatch(bundle: ModelBundle, classes: Sequence[ClassDef], bands: Sequence[str], classes_of: str,
                    bands_of: str) -> str | None:
    """Why a model cannot serve these classes (ids and names, in order) and bands (None when it can).

    ``classes_of`` and ``bands_of`` name where the classes and bands come from, for the message.
    """
    mine, theirs = [(c.id, c.name) for c in bundle.classes], [(c.id, c.name) for c in classes]
    if mine != theirs:
        return f"classes {[n for _, n in mine]} do not match {classes_of} classes {[n for _, n in theirs]}"
    if list(bundle.bands) != list(bands):
        return f"bands {bundle.bands} do not match {bands_of}'s bands {list(bands)}"
    return None


def trained_on(catalog: Catalog, plan: SplitPlan, label_fraction: float | None, selection: str,
               seed: int) -> TrainedOn:
    """The record a bundle keeps of the labeled area it is trained on (:class:`geossl.models.TrainedOn`)."""
    return TrainedOn(catalog_hash=catalog.input_hash, labeled=sorted(r.key for r in plan.of(Split.LABELED)),
                     label_fraction=label_fraction, label_selection=selection, seed=seed)


def trained_regions(bundle: ModelBundle, checkpoint: Path, catalog: Catalog, root: Path) -> list[Region]:
    """The catalog's regions as the model was trained on them: its record's labeled regions, the rest unlabeled.

    A catalog other than the one recorded (re-ingested since: another input hash) is refused, naming the
    checkpoint. A bundle written before the record existed gets the catalog's own splits (right unless it was
    trained with ``--label-fraction``: :func:`warn_unrecorded` says so once the inputs are checked).
    """
    record = bundle.trained_on
    if record is None:
        return split_regions(catalog)
    if record.catalog_hash != catalog.input_hash:
        raise InputError(checkpoint, f"was trained on another catalog than {root / CATALOG_NAME} (input hash "
                                     f"{record.catalog_hash[:12]} there, {catalog.input_hash[:12]} here: re-ingested "
                                     "since?); give the catalog it was trained on, or train again")
    return with_labeled(catalog, root, set(record.labeled))


def warn_unrecorded(bundle: ModelBundle, checkpoint: Path) -> None:
    """Warn that an older bundle's labeled area is taken from the catalog (:func:`trained_regions`)."""
    if bundle.trained_on is None:
        log.warning("%s does not record the labeled area it was trained on (an older bundle): the catalog's "
                    "labeled split was used, which is wrong if it was trained with --label-fraction", checkpoint)
