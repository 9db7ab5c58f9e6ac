"""The suggestions as a GeoPackage polygon layer with its QGIS style (``layer_styles``) and a ``.qml`` sidecar.

One row per suggested window, its footprint in the catalog CRS: ``rank`` (1 = label first), ``score`` (what it
was chosen with, :mod:`.select`), ``uncertainty`` (the mean per-pixel score of ``--method``), ``dominant_id`` and
``dominant`` (the class most of its pixels are predicted as), ``share_<class>`` per class (share of its pixels
predicted as that class; the class name in lower case, other characters as ``_``), ``scene``, ``row`` and ``col``
(top-left pixel in the scene's image). Both files are written in a staging folder and renamed into place.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import shapely

from geossl.io.atomic import staging_dir
from geossl.io.style import rank_qml
from geossl.manifest import ClassDef
from geossl.suggest.candidates import Candidates
from geossl.vectorize.write import FORMATS, Batch, LayerWriter

STYLE_DESCRIPTION = "geossl suggest: windows graduated by rank"


def share_fields(classes: list[ClassDef]) -> list[str]:
    """``share_<name>`` per class (lower case, non-alphanumerics as ``_``; the id added where names collide)."""
    slugs = [re.sub(r"[^0-9a-z]+", "_", c.name.lower()).strip("_") or str(c.id) for c in classes]
    return [f"share_{s}" if slugs.count(s) == 1 else f"share_{s}_{c.id}" for s, c in zip(slugs, classes, strict=True)]


def fields(classes: list[ClassDef]) -> list[str]:
    """The layer's attribute names, in order."""
    return ["rank", "score", "uncertainty", "dominant_id", "dominant", *share_fields(classes), "scene", "row", "col"]


def write_suggestions(out: Path, chosen: Candidates, scores: np.ndarray, classes: list[ClassDef],
                      scene_ids: list[str], crs_wkt: str) -> Path:
    """Write ``chosen`` (in rank order) to ``out`` and its style to ``out.qml``; return the style's path."""
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
        (stage / style_path.name).write_text(qml)
        os.replace(staged, out)
        os.replace(stage / style_path.name, style_path)
    return style_path
