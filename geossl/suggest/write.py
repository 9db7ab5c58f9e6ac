"""The suggestions as a GeoPackage polygon layer with its QGIS style (``layer_styles``) and a ``.qml`` sidecar.

One row per suggested window, its footprint in the catalog CRS: ``rank`` (1 = label first), ``score`` (what it
was chosen with, :mod:`.select`), ``uncertainty`` (the mean per-pixel score of ``--method``), ``dominant_id`` and
``dominant`` (the class most of its pixels are predicted as), ``share_<class>`` per class (share of its pixels
predicted as that class; the class name in lower case, other characters as ``_``), ``scene``, ``row`` and ``col``
(top-left pixel in the scene's image).

Beside it, the layer :data:`~geossl.io.layers.LABEL_LAYER` (``labels``) is where the analyst draws: polygons
with one attribute, the manifest's class field (``class``), an integer shown in QGIS's form as a drop-down of the
class names (:func:`geossl.io.style.label_qml`, the layer's default style). It is empty in a new file; when
``--overwrite`` replaces a file, the polygons drawn in it are carried over (reprojected if the CRS changed), so
the next round's suggestions land in the file the analyst draws in and ``labels.drawn`` keeps naming it. Both
files are written in a staging folder and renamed into place.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

from geossl.errors import InputError
from geossl.io.atomic import staging_dir
from geossl.io.layers import LABEL_LAYER, layers_of
from geossl.io.style import label_qml, rank_qml
from geossl.manifest import ClassDef
from geossl.suggest.candidates import Candidates
from geossl.vectorize.write import FORMATS, Batch, LayerWriter, write_style

log = logging.getLogger(__name__)

STYLE_DESCRIPTION = "geossl suggest: windows graduated by rank"
LABEL_STYLE_DESCRIPTION = "geossl suggest: draw labels here (class drop-down)"


def share_fields(classes: list[ClassDef]) -> list[str]:
    """``share_<name>`` per class (lower case, non-alphanumerics as ``_``; the id added where names collide)."""
    slugs = [re.sub(r"[^0-9a-z]+", "_", c.name.lower()).strip("_") or str(c.id) for c in classes]
    return [f"share_{s}" if slugs.count(s) == 1 else f"share_{s}_{c.id}" for s, c in zip(slugs, classes, strict=True)]


def fields(classes: list[ClassDef]) -> list[str]:
    """The layer's attribute names, in order."""
    return ["rank", "score", "uncertainty", "dominant_id", "dominant", *share_fields(classes), "scene", "row", "col"]


def write_suggestions(out: Path, chosen: Candidates, scores: np.ndarray, classes: list[ClassDef],
                      scene_ids: list[str], crs_wkt: str, class_field: str) -> Path:
    """Write ``chosen`` (in rank order) and the label layer to ``out``, the windows' style to ``out.qml``.

    Returns the style's path.
    """
    style_path = out.with_suffix(".qml")
    dominant = chosen.shares.argmax(axis=1)
    columns: list[np.ndarray] = [np.arange(1, len(chosen) + 1, dtype=np.int32), scores.astype(np.float64),
               chosen.uncertainty.astype(np.float64), np.array([classes[k].id for k in dominant], dtype=np.int32),
               np.array([classes[k].name for k in dominant], dtype=object),
               *[chosen.shares[:, k].astype(np.float64) for k in range(len(classes))],
               np.array([scene_ids[s] for s in chosen.scene], dtype=object),
               chosen.row.astype(np.int32), chosen.col.astype(np.int32)]
    b = chosen.boxes
    geoms = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    qml = rank_qml(len(chosen))
    with staging_dir(out) as stage:
        staged = stage / out.name
        writer = LayerWriter(staged, FORMATS["gpkg"], out.stem, crs_wkt, fields(classes))
        writer.write(Batch(wkb=shapely.to_wkb(geoms), columns=columns, bounds=b.astype(np.float64)))
        writer.close(qml, STYLE_DESCRIPTION)
        write_label_layer(staged, classes, class_field, crs_wkt, out if out.is_file() else None)
        (stage / style_path.name).write_text(qml)
        os.replace(staged, out)
        os.replace(stage / style_path.name, style_path)
    return style_path


def write_label_layer(path: Path, classes: list[ClassDef], field: str, crs_wkt: str, previous: Path | None) -> None:
    """Add the layer to draw labels in to the GeoPackage ``path``, with its style (module docstring).

    The polygons of ``previous``'s label layer, if it has one, are carried over.
    """
    kept = _drawn_so_far(previous)
    if kept is None or len(kept) == 0:
        pyogrio.raw.write(str(path), np.zeros(0, dtype=object), [np.zeros(0, dtype=np.int32)], [field],
                          layer=LABEL_LAYER, driver="GPKG", geometry_type="MultiPolygon", crs=crs_wkt,
                          encoding="UTF-8")
    else:
        log.info("keeping the %d polygons drawn in %s's layer '%s'", len(kept), previous, LABEL_LAYER)
        pyogrio.write_dataframe(kept.to_crs(crs_wkt).reset_index(), path, layer=LABEL_LAYER, driver="GPKG",
                                geometry_type="MultiPolygon", promote_to_multi=True, encoding="UTF-8")
    write_style(path, LABEL_LAYER, label_qml(classes, field), LABEL_STYLE_DESCRIPTION)


def _drawn_so_far(previous: Path | None) -> gpd.GeoDataFrame | None:
    """The label layer of ``previous`` (with its feature ids as ``fid``), or None when it has none."""
    try:
        if previous is None or LABEL_LAYER not in layers_of(previous):
            return None
    except InputError:  # not a vector file: nothing was drawn in it
        return None
    frame: gpd.GeoDataFrame = pyogrio.read_dataframe(previous, layer=LABEL_LAYER, fid_as_index=True)
    return frame
