"""Data manifests: one region's classes, imagery, labels, target grid and splits.

A manifest is YAML validated by :class:`Manifest`. Paths in it are relative to the manifest's folder, or to
``--data-root`` when one is given; a relative path may not leave that folder.

Example::

    name: zion
    classes:
      - {id: 1, name: Water, color: "#476ba0"}
      - {id: 4, name: Forest, color: "#68aa63"}
    ignore_id: 0
    imagery:
      paths: ["zion/landsat8_*.tif"]
      bands: [blue, green, red, nir]
    labels:
      rasters: ["zion/nlcd2011_zion_8class_original_EPSG26912.tif"]
    prior:                                  # optional: a noisy map of the area, its ids mapped to the classes
      rasters: ["zion/older_map.tif"]
      classes: {11: 1, 41: 4}
    grid: {crs: null, resolution: null}     # default: the first scene's
    splits:
      blocks: {rows: 8, cols: 8, val_fraction: 0.2, test_fraction: 0.2, labeled_fraction: 0.125, seed: 0}
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from geossl.config import StrictModel, known_crs, load_yaml_model
from geossl.errors import InputError
from geossl.io.layers import LayerSource, layer_digest, split_source
from geossl.selection import LabeledSelection

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class ClassDef(StrictModel):
    """One land-cover class: its raster id, display name and colour (``#rrggbb``)."""

    id: Annotated[int, Field(ge=0, le=65535)]
    name: Annotated[str, Field(min_length=1)]
    color: str

    @field_validator("color")
    @classmethod
    def _check_color(cls, value: str) -> str:
        if not _COLOR.match(value):
            raise ValueError(f"'{value}' is not a colour of the form #rrggbb")
        return value.lower()

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as an (r, g, b) tuple of 0-255 integers."""
        return tuple(int(self.color[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


class ImageryConfig(StrictModel):
    """Imagery rasters (paths or globs), their band names and an optional nodata override."""

    paths: Annotated[list[str], Field(min_length=1)]
    bands: list[str] | None = None
    nodata: Annotated[float, Field(allow_inf_nan=True)] | None = None  # NaN: float rasters' usual nodata


class LabelsConfig(StrictModel):
    """Label rasters and/or vector polygons with a class attribute (rasterized at ingest).

    ``drawn`` are polygons an analyst drew in the unlabeled area (e.g. in the ``labels`` layer of ``geossl
    suggest``'s GeoPackage), with the same ``class_field``: they take precedence over the other labels, and the
    part of the unlabeled split they cover becomes labeled (:func:`geossl.ingest.splits.with_drawn`). The splits
    are otherwise decided as without them, so validation and test stay where they were. An entry may name a
    layer as QGIS does, ``PATH|layername=NAME`` (:mod:`geossl.io.layers`); what drawn polygons may not be is
    listed in :mod:`geossl.ingest.drawn`.
    """

    rasters: list[str] = []
    vectors: list[str] = []
    drawn: list[str] = []
    class_field: str = "class"
    nodata: int | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> LabelsConfig:
        if not self.rasters and not self.vectors and not self.drawn:
            raise ValueError("give at least one of 'rasters', 'vectors' or 'drawn'")
        return self


class PriorConfig(StrictModel):
    """An existing, noisy map of the area (an older product, another model, ``geossl zeroshot``'s output).

    ``classes`` maps the prior's class ids to the manifest's class ids (or to ``ignore_id``: no prior there);
    every id the rasters hold, except their nodata, must be mapped. Ingest brings the rasters onto the imagery's
    grid (nearest neighbour, like labels) and training uses the prior as a second, weaker teacher on the
    unlabeled area.
    """

    rasters: Annotated[list[str], Field(min_length=1)]
    classes: Annotated[dict[Annotated[int, Field(ge=0, le=65535)], int], Field(min_length=1)]
    nodata: int | None = None


class GridConfig(StrictModel):
    """Target grid: CRS (any string rasterio understands) and pixel size in CRS units."""

    crs: str | None = None
    resolution: Annotated[float, Field(gt=0)] | None = None

    @field_validator("crs")
    @classmethod
    def _check_crs(cls, value: str | None) -> str | None:
        return None if value is None else known_crs(value)


class BlockSplits(StrictModel):
    """Spatially disjoint blocks: a ``rows`` x ``cols`` grid over the region, assigned with a seed.

    ``size`` (target CRS units, e.g. metres) gives square blocks of that side instead, from the region's
    north-west corner, as many rows and columns as cover it (``rows`` and ``cols`` are then unused): for scattered
    tiles, where a grid over the whole bounding box would cut long thin blocks out of empty space. Blocks without
    labels take no part in the draw.

    ``val_fraction`` and ``test_fraction`` of the blocks go to validation and test; of the remaining train
    blocks, ``labeled_fraction`` keep their labels and the rest are unlabeled; ``labeled_selection`` says which
    (``random``: a seeded draw; ``cover_classes``: every class gets a labeled block first, see
    :mod:`geossl.selection`).
    """

    rows: Annotated[int, Field(ge=1, le=1000)] = 8
    cols: Annotated[int, Field(ge=1, le=1000)] = 8
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    labeled_fraction: Annotated[float, Field(gt=0, le=1)] = 0.125
    labeled_selection: LabeledSelection = "random"
    seed: int = 0
    size: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _fractions(self) -> BlockSplits:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave some blocks for training")
        return self


class Split(StrEnum):
    """The splits of a region: train regions with labels (``labeled``) and without, validation and test."""

    LABELED = "labeled"
    UNLABELED = "unlabeled"
    VAL = "val"
    TEST = "test"

    @property
    def is_train(self) -> bool:
        """True for the train splits (``labeled`` and ``unlabeled``), whose labels ``--label-fraction`` redraws."""
        return self in (Split.LABELED, Split.UNLABELED)


Region = list[float] | str
"""A region: a bounding box ``[minx, miny, maxx, maxy]`` in the target CRS, or a vector file path."""


class RegionSplits(StrictModel):
    """Splits drawn by hand: each a list of bounding boxes (target CRS) or vector files of polygons.

    One field per :class:`Split`, named by its value.
    """

    labeled: Annotated[list[Region], Field(min_length=1)]
    unlabeled: list[Region] = []
    val: list[Region] = []
    test: list[Region] = []

    @field_validator("labeled", "unlabeled", "val", "test")
    @classmethod
    def _check_boxes(cls, regions: list[Region]) -> list[Region]:
        for region in regions:
            if isinstance(region, list):
                if len(region) != 4 or region[0] >= region[2] or region[1] >= region[3]:
                    raise ValueError(f"{region} is not a box [minx, miny, maxx, maxy] with min < max")
        return regions

    def of(self, split: Split) -> list[Region]:
        """The regions drawn for ``split``."""
        regions: list[Region] = getattr(self, split.value)
        return regions


class SplitsConfig(StrictModel):
    """Exactly one of ``blocks`` (generated) or ``regions`` (drawn by hand)."""

    blocks: BlockSplits | None = None
    regions: RegionSplits | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SplitsConfig:
        if (self.blocks is None) == (self.regions is None):
            raise ValueError("give exactly one of 'blocks' or 'regions'")
        return self


class Manifest(StrictModel):
    """One region: what to ingest, how to label it and how to split it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    classes: Annotated[list[ClassDef], Field(min_length=1)]
    ignore_id: Annotated[int, Field(ge=0, le=65535)] = 0
    imagery: ImageryConfig
    labels: LabelsConfig | None = None
    prior: PriorConfig | None = None
    grid: GridConfig = GridConfig()
    splits: SplitsConfig = SplitsConfig(blocks=BlockSplits())

    @model_validator(mode="after")
    def _classes(self) -> Manifest:
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise ValueError("class ids must be unique")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
        if self.ignore_id in ids:
            raise ValueError(f"ignore_id {self.ignore_id} is also a class id")
        if self.prior is not None:
            bad = sorted(set(self.prior.classes.values()) - {*ids, self.ignore_id})
            if bad:
                raise ValueError(f"prior.classes maps to {bad}, which are neither class ids {ids} nor the "
                                 f"ignore id {self.ignore_id}")
        return self

    @property
    def class_ids(self) -> list[int]:
        """Class ids in manifest order."""
        return [c.id for c in self.classes]

    @property
    def class_field(self) -> str:
        """The attribute of vector and drawn labels that holds the class (``labels.class_field`` or its default)."""
        if self.labels is None:
            return str(LabelsConfig.model_fields["class_field"].default)
        return self.labels.class_field


@dataclass
class ResolvedInputs:
    """The manifest's files, resolved to existing absolute paths."""

    imagery: list[Path]
    label_rasters: list[Path] = field(default_factory=list)
    label_vectors: list[Path] = field(default_factory=list)
    label_drawn: list[LayerSource] = field(default_factory=list)
    prior_rasters: list[Path] = field(default_factory=list)
    region_files: dict[str, Path] = field(default_factory=dict)

    def all_files(self) -> list[Path]:
        """Every input file but the drawn labels' (hashed by their layer's content, :meth:`drawn_digests`)."""
        return [*self.imagery, *self.label_rasters, *self.label_vectors, *self.prior_rasters,
                *self.region_files.values()]

    def drawn_digests(self) -> list[str]:
        """The content hash of each drawn label layer (:func:`geossl.io.layers.layer_digest`)."""
        return [layer_digest(source) for source in self.label_drawn]


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file."""
    return load_yaml_model(Manifest, Path(path))


def _resolve_one(pattern: str, base: Path, restrict: bool, manifest_path: Path) -> list[Path]:
    """Resolve a path or glob against ``base``; refuse a path that escapes it when ``restrict``."""
    if os.path.isabs(pattern):
        if restrict:
            raise InputError(pattern, f"absolute path is outside the data root {base}")
        full = os.path.normpath(pattern)
    else:
        full = os.path.normpath(os.path.join(base, pattern))
        if restrict and os.path.commonpath([full, str(base)]) != str(base):
            raise InputError(pattern, f"path escapes the data root {base}")
    if glob.has_magic(full):
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p))
        if not matches:
            raise InputError(pattern, f"no files match this pattern (manifest {manifest_path})")
        return matches
    if not os.path.isfile(full):
        raise InputError(full, f"file not found (named in manifest {manifest_path})")
    return [Path(full)]


def resolve_inputs(manifest: Manifest, manifest_path: str | Path, data_root: str | Path | None) -> ResolvedInputs:
    """Resolve the manifest's paths and globs to files.

    Relative paths are taken from ``data_root`` when given, else from the manifest's folder, and must stay
    inside it. Absolute paths are refused when a data root is given.
    """
    manifest_path = Path(manifest_path)
    base = Path(os.path.normpath(os.path.abspath(data_root if data_root else manifest_path.parent)))
    restrict_abs = data_root is not None
    if data_root is not None and not base.is_dir():
        raise InputError(data_root, "data root is not a folder")

    def many(patterns: list[str]) -> list[Path]:
        out: list[Path] = []
        for pattern in patterns:
            if os.path.isabs(pattern) and not restrict_abs:
                out.extend(_resolve_one(pattern, base, False, manifest_path))
            else:
                out.extend(_resolve_one(pattern, base, True, manifest_path))
        return out

    resolved = ResolvedInputs(imagery=many(manifest.imagery.paths))
    if manifest.labels is not None:
        resolved.label_rasters = many(manifest.labels.rasters)
        resolved.label_vectors = many(manifest.labels.vectors)
        resolved.label_drawn = [LayerSource(path, layer) for pattern, layer in map(split_source, manifest.labels.drawn)
                                for path in many([pattern])]
    if manifest.prior is not None:
        resolved.prior_rasters = many(manifest.prior.rasters)
    if manifest.splits.regions is not None:
        for split in Split:
            for region in manifest.splits.regions.of(split):
                if isinstance(region, str):
                    resolved.region_files[region] = many([region])[0]
    return resolved
