"""The catalog an ingest writes (``catalog.json``): everything training and prediction read of a region.

Paths inside are relative to the catalog's folder. The catalog carries a format ``version``;
:func:`upgrade_catalog` brings a catalog written by an older geossl to the current format when it is read, and
one written by a newer geossl is refused with a message saying so.

Format history:

- 1: the first format; the splits FeatureCollection repeated the CRS (as ``splits.crs``).
- 2: typed splits and band statistics; the splits' CRS is the catalog's ``crs`` (written once).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from geossl.errors import InputError
from geossl.io.atomic import write_text_atomic
from geossl.manifest import ClassDef, Manifest, Split
from geossl.versions import Upgrade, upgrade

CATALOG_NAME = "catalog.json"
CATALOG_VERSION = 2

#: A GeoJSON geometry object (``{"type": ..., "coordinates": ...}``), passed whole to shapely or a GIS.
GeoJSONGeometry = dict[str, Any]


class _Record(BaseModel):
    """A part of the catalog: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class Histogram(_Record):
    """A short histogram of a band: ``counts[i]`` valid pixels in ``[edges[i], edges[i + 1])``."""

    edges: list[float] = []
    counts: list[int] = []


class BandStats(_Record):
    """Statistics of one band over valid pixels (``p2``/``p98``: the 2nd and 98th percentiles)."""

    name: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    p2: float
    p98: float
    histogram: Histogram = Histogram()


class SplitProperties(_Record):
    """Which split a feature is, and for ``blocks`` splits its block's ``row`` and ``col``."""

    split: Split
    row: int | None = None
    col: int | None = None


class SplitFeature(_Record):
    """One GeoJSON feature of the splits: a block, or all regions of one split (``regions`` splits)."""

    type: Literal["Feature"] = "Feature"
    geometry: GeoJSONGeometry
    properties: SplitProperties


class SplitCollection(_Record):
    """The split polygons, in the catalog's CRS (a GeoJSON FeatureCollection)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[SplitFeature] = []


class SceneEntry(_Record):
    """One ingested scene: its analysis-ready image, aligned labels and aligned prior (manifest ``prior:``)."""

    id: str
    source: str
    image: str
    labels: str | None
    prior: str | None = None
    width: int
    height: int
    transform: list[float]
    bounds: list[float]
    footprint_wgs84: GeoJSONGeometry
    band_stats: list[BandStats]


class Catalog(_Record):
    """The ingested region.

    ``class_counts`` are the labeled pixels of each class id (as text: JSON keys) over the whole region.
    """

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
    band_stats: list[BandStats]
    class_counts: dict[str, int]
    scenes: list[SceneEntry]
    splits: SplitCollection
    outputs: dict[str, int]
    manifest: Manifest

    def path_of(self, root: Path, rel: str) -> Path:
        """Absolute path of a file named in the catalog."""
        return (root / rel).absolute()

    def write(self, folder: Path) -> Path:
        """Write ``catalog.json`` atomically into ``folder``."""
        path = folder / CATALOG_NAME
        write_text_atomic(path, self.model_dump_json(indent=2))
        return path


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 → 2: the splits' own copy of the CRS goes (the catalog's ``crs`` says it)."""
    splits = {k: v for k, v in data.get("splits", {}).items() if k != "crs"}
    return {**data, "splits": splits}


#: ``_UPGRADES[v]`` turns a version ``v`` catalog (as parsed JSON) into a version ``v + 1`` one.
_UPGRADES: dict[int, Upgrade] = {1: _from_v1}


def upgrade_catalog(data: dict[str, Any], source: str | Path = CATALOG_NAME) -> dict[str, Any]:
    """A catalog of any version geossl has written, as parsed JSON, brought to :data:`CATALOG_VERSION`.

    Raises :class:`InputError` naming ``source`` for a catalog of a newer (or unknown) version.
    """
    return upgrade(data, CATALOG_VERSION, _UPGRADES, source, "catalog")


def load_catalog(folder: str | Path) -> Catalog:
    """Read ``catalog.json`` from an ingest output folder (or the file itself), upgrading an older format."""
    path = Path(folder)
    if path.is_dir():
        path = path / CATALOG_NAME
    if not path.is_file():
        raise InputError(path, "no catalog here; run `geossl ingest` first")
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise InputError(path, "not a geossl catalog (not a JSON object)")
        return Catalog.model_validate(upgrade_catalog(data, path))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InputError(path, f"not a geossl catalog ({str(exc).splitlines()[0]})") from exc
