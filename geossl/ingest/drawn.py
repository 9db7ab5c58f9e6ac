"""Labels an analyst drew (``labels.drawn``): read from their layer, checked, each refusal one line.

What drawing in QGIS can get wrong, and what ingest does with it (an analyst fixes a refusal in a minute; a
label taken wrongly would cost a training round):

* no class (the attribute left empty): refused, naming the features (QGIS's form of the ``labels`` layer that
  ``geossl suggest`` writes asks for one);
* a class the manifest lacks (a name or an id): refused, naming the values (:mod:`geossl.ingest.classes`);
* a point or a line: refused, labels are areas;
* an invalid polygon (a ring crossing itself): repaired as GEOS makes it valid, with a warning;
* polygons of different classes overlapping by a pixel or more: refused, naming the pair: a pixel holds one
  class, and which one would depend on the drawing order. Overlaps within a class, and slivers smaller than a
  pixel (an edge traced twice), are fine;
* a polygon wholly outside the unlabeled split, where it would add no labeled area: refused. One partly
  outside is kept, with a warning (:func:`geossl.ingest.splits.with_drawn`);
* another CRS than the catalog's: reprojected. No CRS: refused.

Features are named by their id in the layer (QGIS's feature id, ``fid``).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyogrio.errors import DataSourceError
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from geossl.errors import InputError
from geossl.ingest.classes import class_ids
from geossl.io.layers import LayerSource, resolve_layer
from geossl.manifest import Manifest

log = logging.getLogger(__name__)

#: At most this many feature ids are quoted in a message.
MAX_QUOTED = 10
POLYGONAL = ("Polygon", "MultiPolygon")


def _ids(fids: object) -> str:
    """``feature 3`` or ``features 3, 7, ...`` (at most :data:`MAX_QUOTED` ids)."""
    ids = [str(int(i)) for i in np.asarray(fids).ravel()]
    more = f" and {len(ids) - MAX_QUOTED} more" if len(ids) > MAX_QUOTED else ""
    return f"feature{'s' if len(ids) > 1 else ''} {', '.join(ids[:MAX_QUOTED])}{more}"


def read_drawn(source: LayerSource, manifest: Manifest) -> gpd.GeoDataFrame:
    """The drawn polygons of ``source``: ``class_id`` and ``geometry``, indexed by feature id (checks: module)."""
    field = manifest.class_field
    try:
        frame = gpd.read_file(source.path, layer=resolve_layer(source), fid_as_index=True, engine="pyogrio")
    except (DataSourceError, ValueError, OSError) as exc:
        raise InputError(str(source), f"cannot read drawn labels: {str(exc).splitlines()[0]}") from exc
    if frame.crs is None:
        raise InputError(str(source), "drawn labels have no CRS")
    if field not in frame.columns:
        raise InputError(str(source), f"drawn labels have no attribute '{field}' "
                                 f"(attributes: {', '.join(c for c in frame.columns if c != 'geometry') or 'none'})")
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    unset = frame.index[frame[field].isna() | (frame[field].astype(str).str.strip() == "")]
    if len(unset):
        raise InputError(str(source), f"no class in attribute '{field}' for {_ids(unset)}; choose one in QGIS's "
                                 "attribute form, or delete them")
    frame = frame.assign(class_id=class_ids(frame[field], manifest, str(source), field))[["class_id", "geometry"]]
    return _polygons(frame, source)


def _polygons(frame: gpd.GeoDataFrame, source: LayerSource) -> gpd.GeoDataFrame:
    """Refuse what is not a polygon; repair invalid polygons (with a warning)."""
    kinds = frame.geometry.geom_type
    other = frame.index[~kinds.isin(POLYGONAL)]
    if len(other):
        raise InputError(str(source), f"drawn labels must be polygons: {_ids(other)} "
                                 f"({', '.join(sorted(set(kinds[other])))})")
    geoms = np.array(frame.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        log.warning("%s: %s repaired (a ring crossing itself, or the like)", source, _ids(frame.index[invalid]))
        geoms[invalid] = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
        frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    return frame


def check_overlaps(frames: list[gpd.GeoDataFrame], sources: list[LayerSource], crs: CRS, pixel_area: float,
                   manifest: Manifest) -> None:
    """Refuse polygons of different classes that overlap by a pixel (``pixel_area``, in ``crs``) or more."""
    parts = [f.to_crs(crs).assign(source=k, fid=f.index) for k, f in enumerate(frames)]
    if not parts:
        return
    drawn = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs)
    geoms, classes = drawn.geometry.values, drawn["class_id"].to_numpy()
    first, second = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = (first < second) & (classes[first] != classes[second])
    first, second = first[pairs], second[pairs]
    overlap = shapely.area(shapely.intersection(geoms[first], geoms[second])) / pixel_area
    big = np.flatnonzero(overlap >= 1)
    if len(big) == 0:
        return
    a, b, pixels = first[big[0]], second[big[0]], overlap[big[0]]
    names = {c.id: c.name for c in manifest.classes} | {manifest.ignore_id: "ignore"}
    other = "" if drawn["source"][a] == drawn["source"][b] else f" of {sources[drawn['source'][b]]}"
    raise InputError(str(sources[drawn["source"][a]]),
                     f"feature {drawn['fid'][a]} ({names[classes[a]]}) and feature {drawn['fid'][b]}{other} "
                     f"({names[classes[b]]}) overlap over {pixels:.1f} pixels: a pixel holds one class; cut one "
                     "out of the other (QGIS: Difference), or give them one class")


def check_inside(frames: list[gpd.GeoDataFrame], sources: list[LayerSource], unlabeled: BaseGeometry,
                 crs: CRS) -> None:
    """Refuse drawn polygons that lie wholly outside the unlabeled split (``unlabeled``, in ``crs``)."""
    for frame, source in zip(frames, sources, strict=True):
        geoms = frame.to_crs(crs).geometry.values
        gained = shapely.area(shapely.intersection(geoms, unlabeled))
        outside = frame.index[gained <= 1e-9 * np.maximum(shapely.area(geoms), 1.0)]
        if len(outside):
            raise InputError(str(source), f"wholly outside the unlabeled split: {_ids(outside)}; drawn labels add "
                                     "labeled area only inside it (where geossl suggest's windows lie): move or "
                                     "delete them")
