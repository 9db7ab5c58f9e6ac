"""Write polygons with pyogrio: GeoPackage in batches (with its QGIS style embedded), other formats at once.

GeoPackage. The layer is created by the first batch and later batches are appended, without a spatial index:
GDAL packs the R-tree quickly only for rows written in the same call, and row-by-row R-tree inserts cost
~50 µs a row, more than everything else. At the end the tree is packed at once from the rows' boxes
(:mod:`geossl.vectorize.rtree`), with the R-tree table, ``gpkg_extensions`` row and triggers exactly as this
GDAL makes them (copied from an empty layer it writes for the purpose): the file ends as if GDAL had
indexed it.
The QGIS style goes into the ``layer_styles`` table
with the schema QGIS itself creates (QgsOgrProviderMetadata::saveStyle: FID ``id``, ``f_table_catalog``,
``f_table_schema``, ``f_table_name``, ``f_geometry_column``, ``styleName``, ``styleQML``, ``styleSLD``,
``useAsDefault``, ``description``, ``owner``, ``ui``, ``update_time``), marked as the default style.

FlatGeobuf (whose spatial index needs every feature at once), GeoJSON (no schema without features) and
GeoParquet are written in one call when the layer is closed, so they hold the WKB in memory until then.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write

from geossl.errors import InputError
from geossl.vectorize.rtree import bulk_load, outward_float32

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Format:
    """An output format: command-line name, GDAL driver, file suffix."""

    name: str
    driver: str
    suffix: str


FORMATS = {f.name: f for f in (Format("gpkg", "GPKG", ".gpkg"), Format("fgb", "FlatGeobuf", ".fgb"),
                                Format("geojson", "GeoJSON", ".geojson"), Format("parquet", "Parquet", ".parquet"))}
SUFFIXES = {f.suffix: f for f in FORMATS.values()} | {".json": FORMATS["geojson"], ".geoparquet": FORMATS["parquet"]}

#: The GeoPackage table QGIS keeps its layer styles in.
STYLES_TABLE = "layer_styles"
#: Rows per GeoPackage append: large enough that opening the file for each batch costs little.
BATCH_ROWS = 100_000


def resolve_format(out: Path, name: str | None) -> Format:
    """The output format: ``name`` when given, else from ``out``'s suffix; parquet only when it can be written."""
    choices = ", ".join(FORMATS)
    if name is not None:
        fmt = FORMATS.get(name.lower())
        if fmt is None:
            raise InputError("--format", f"unknown format '{name}'; choose one of {choices}")
    else:
        fmt = SUFFIXES.get(out.suffix.lower())
        if fmt is None:
            raise InputError(out, f"cannot tell the format from the suffix '{out.suffix}'; use --format "
                                  f"({choices})")
    if fmt.name == "parquet" and not _parquet_writer():
        raise InputError("--format", "parquet needs GDAL's Parquet driver or the pyarrow package, and neither "
                                     "is installed; use gpkg, fgb or geojson")
    return fmt


def quoted(name: str) -> str:
    """``name`` as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _parquet_writer() -> str | None:
    if "w" in pyogrio.list_drivers().get("Parquet", ""):
        return "gdal"
    if importlib.util.find_spec("pyarrow") is not None:
        return "geopandas"
    return None


def write_style(path: Path, layer: str, qml: str, description: str) -> None:
    """``qml`` as QGIS's default style of ``layer`` in the GeoPackage ``path``: a row of ``layer_styles``.

    The table is created as QGIS makes it (module docstring) when the file has none yet, else appended to.
    """
    now = np.array([dt.datetime.now(dt.UTC).replace(tzinfo=None)], dtype="datetime64[ms]")
    columns = {
        "f_table_catalog": "", "f_table_schema": "", "f_table_name": layer, "f_geometry_column": "geom",
        "styleName": layer, "styleQML": qml, "styleSLD": "", "useAsDefault": True,
        "description": description, "owner": "", "ui": "",
    }
    data = [np.array([v], dtype=bool if isinstance(v, bool) else object) for v in columns.values()]
    append = STYLES_TABLE in [name for name, _ in pyogrio.list_layers(path)]
    ogr_write(str(path), None, [*data, now], [*columns, "update_time"], layer=STYLES_TABLE, driver="GPKG",
              layer_options=None if append else {"FID": "id"}, encoding="UTF-8", append=append)


@dataclass
class Batch:
    """Rows to write: WKB geometries, attribute columns (in the layer's field order) and boxes.

    ``bounds`` are the geometries' ``(n, 4)`` boxes ``minx, miny, maxx, maxy``, for the spatial index.
    """

    wkb: np.ndarray
    columns: list[np.ndarray]
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.wkb)


class LayerWriter:
    """One polygon layer written at ``path`` in ``fmt`` (see the module docstring)."""

    def __init__(self, path: Path, fmt: Format, layer: str, crs_wkt: str, fields: list[str],
                 id_type: type = np.int32):
        self.path, self.fmt, self.layer, self.crs, self.fields = path, fmt, layer, crs_wkt, fields
        self.id_type = id_type
        self.count = 0
        self._pending: list[Batch] = []
        self._pending_rows = 0
        self._created = False
        self._last_fid = 0
        self._boxes: list[np.ndarray] = []

    def write(self, batch: Batch) -> None:
        """Queue ``batch``; GeoPackage rows go to the file every :data:`BATCH_ROWS` rows."""
        if len(batch) == 0:
            return
        self._pending.append(batch)
        self._pending_rows += len(batch)
        self.count += len(batch)
        if self.fmt.name == "gpkg" and self._pending_rows >= BATCH_ROWS:
            self._flush()

    def close(self, style_qml: str | None = None, style_description: str = "geossl vectorize: class palette and "
                                                                         "labels") -> int:
        """Write what is queued (the whole layer for non-GeoPackage formats), then the style; return the row count."""
        if self.fmt.name == "gpkg":
            self._flush(final=True)
            self._build_index()
            if style_qml is not None:
                self._write_style(style_qml, style_description)
        else:
            batch = self._take()
            if self.fmt.name == "parquet" and _parquet_writer() == "geopandas":
                self._write_geoparquet(batch)
            else:
                self._ogr_write(batch, append=False)
        return self.count

    def _take(self) -> Batch:
        if not self._pending:
            return Batch(np.zeros(0, dtype=object), [], np.zeros((0, 4)))
        parts, self._pending, self._pending_rows = self._pending, [], 0
        return Batch(np.concatenate([p.wkb for p in parts]),
                     [np.concatenate([p.columns[k] for p in parts]) for k in range(len(parts[0].columns))],
                     np.concatenate([p.bounds for p in parts]))

    def _ogr_write(self, batch: Batch, append: bool, path: Path | None = None, **options: str) -> None:
        columns = batch.columns if batch.columns else self._empty_columns()
        ogr_write(str(path or self.path), batch.wkb, columns, self.fields, layer=self.layer, driver=self.fmt.driver,
                  geometry_type="Polygon", crs=self.crs, append=append, encoding="UTF-8",
                  layer_options=options or None)

    def _empty_columns(self) -> list[np.ndarray]:
        """Typed empty columns, so an empty layer still has the full schema."""
        kinds = {"class_id": self.id_type, "class_name": object}
        return [np.zeros(0, dtype=kinds.get(f, np.float64)) for f in self.fields]

    # GeoPackage ------------------------------------------------------------------------------------------

    def _flush(self, final: bool = False) -> None:
        if not self._pending and (self._created or not final):
            return
        batch = self._take()
        if not self._created:
            self._ogr_write(batch, append=False, SPATIAL_INDEX="NO")
            self._created = True
        else:
            self._ogr_write(batch, append=True)
        self._remember_boxes(batch)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def _remember_boxes(self, batch: Batch) -> None:
        """Note the batch's boxes (16 bytes a row: 4 float32) for the spatial index; its rows got the next fids."""
        with contextlib.closing(self._connect()) as db:
            last, total = db.execute(f"SELECT coalesce(max(fid), 0), count(*) FROM {quoted(self.layer)}").fetchone()
        # A fresh AUTOINCREMENT table written only here: the batch got the next consecutive fids.
        if last - self._last_fid != len(batch) or total != self.count:  # pragma: no cover
            raise RuntimeError(f"{self.path}: rows were not numbered as written")
        self._boxes.append(outward_float32(batch.bounds))
        self._last_fid = last

    def _build_index(self) -> None:
        """Create the layer's R-tree as GDAL would, packed at once (see :mod:`geossl.vectorize.rtree`)."""
        template = self.path.with_name(f".{self.path.stem}.index-template.gpkg")
        self._ogr_write(Batch(np.zeros(0, dtype=object), [], np.zeros((0, 4))), append=False, path=template)
        rtree = f"rtree_{self.layer}_geom"
        with contextlib.closing(sqlite3.connect(template)) as db:
            table_sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                                   (rtree,)).fetchone()[0]
            triggers = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND "
                                                 "tbl_name = ? AND name LIKE ?", (self.layer, f"{rtree}_%"))]
            extension = db.execute("SELECT * FROM gpkg_extensions WHERE table_name = ? AND extension_name = "
                                   "'gpkg_rtree_index'", (self.layer,)).fetchall()
            extensions_sql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = "
                                        "'gpkg_extensions'").fetchone()[0]
        template.unlink()
        boxes = np.concatenate(self._boxes) if self._boxes else np.zeros((0, 4), dtype=np.float32)
        self._boxes = []
        fids = np.arange(1, self._last_fid + 1, dtype=np.int64)  # consecutive from 1: checked batch by batch
        with contextlib.closing(self._connect()) as db, db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'gpkg_extensions'").fetchone():
                db.execute(extensions_sql)
            db.execute(table_sql)
            bulk_load(db, rtree, fids, boxes)
            db.executemany("INSERT INTO gpkg_extensions VALUES (?, ?, ?, ?, ?)", extension)
            for sql in triggers:
                db.execute(sql)

    def _write_style(self, qml: str, description: str) -> None:
        write_style(self.path, self.layer, qml, description)

    # GeoParquet without GDAL's driver ----------------------------------------------------------------------

    def _write_geoparquet(self, batch: Batch) -> None:  # tested where pyarrow is installed
        import geopandas as gpd

        columns = batch.columns if batch.columns else self._empty_columns()
        frame = gpd.GeoDataFrame(dict(zip(self.fields, columns, strict=True)),
                                 geometry=shapely.from_wkb(batch.wkb), crs=self.crs)
        frame.to_parquet(self.path)
