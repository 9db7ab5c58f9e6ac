"""The catalog an ingest writes (``catalog.json``): everything training and prediction read of a region.

Paths inside are relative to the catalog's folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from geossl.errors import InputError
from geossl.io.atomic import write_text_atomic
from geossl.manifest import ClassDef

CATALOG_NAME = "catalog.json"
CATALOG_VERSION = 1


class SceneEntry(BaseModel):
    """One ingested scene: its analysis-ready image, aligned labels and aligned prior (manifest ``prior:``)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    image: str
    labels: str | None
    prior: str | None = None
    width: int
    height: int
    transform: list[float]
    bounds: list[float]
    footprint_wgs84: dict[str, Any]
    band_stats: list[dict[str, Any]]


class Catalog(BaseModel):
    """The ingested region."""

    model_config = ConfigDict(extra="forbid")

    version: int = CATALOG_VERSION
    name: str
    created: str
    geossl_version: str
    input_hash: str
    crs: str
    resolution: list[float]
    bands: list[str]
    dtype: str
    nodata: float | None
    classes: list[ClassDef]
    ignore_id: int
    band_stats: list[dict[str, Any]]
    class_counts: dict[str, int]
    scenes: list[SceneEntry]
    splits: dict[str, Any]
    outputs: dict[str, int]
    manifest: dict[str, Any]

    def path_of(self, root: Path, rel: str) -> Path:
        """Absolute path of a file named in the catalog."""
        return (root / rel).absolute()

    def write(self, folder: Path) -> Path:
        """Write ``catalog.json`` atomically into ``folder``."""
        path = folder / CATALOG_NAME
        write_text_atomic(path, self.model_dump_json(indent=2))
        return path


def load_catalog(folder: str | Path) -> Catalog:
    """Read ``catalog.json`` from an ingest output folder (or the file itself)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CATALOG_NAME
    if not path.is_file():
        raise InputError(path, "no catalog here; run `geossl ingest` first")
    try:
        return Catalog.model_validate(json.loads(path.read_text()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InputError(path, f"not a geossl catalog ({str(exc).splitlines()[0]})") from exc
