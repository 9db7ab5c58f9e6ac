"""Simplify the polygons as one coverage, so neighbours keep sharing their borders."""

from __future__ import annotations

import logging

import numpy as np
import shapely

log = logging.getLogger(__name__)


def simplify_coverage(geoms: np.ndarray, tolerance: float) -> np.ndarray:
    """Simplify all ``geoms`` at once with GEOS's coverage simplifier (shapely ``coverage_simplify``).

    Each border shared by two polygons is simplified once and used by both, so there are no gaps and no
    overlaps afterwards, and every result is valid when the input is a valid coverage (edge-matched polygons
    that do not overlap, as the polygonizer writes them). ``tolerance`` is in map units: GEOS removes vertices
    whose triangle with their neighbours has an area below about ``tolerance²`` (Visvalingam-Whyatt). The
    outer boundary of the coverage (raster edge, nodata) is simplified too.
    """
    if len(geoms) == 0 or tolerance <= 0:
        return geoms
    out: np.ndarray = shapely.coverage_simplify(geoms, tolerance)
    invalid = ~shapely.is_valid(out)
    if invalid.any():  # pragma: no cover - GEOS keeps a valid coverage valid
        log.warning("%d polygons invalid after simplification; they are repaired one by one", int(invalid.sum()))
        out[invalid] = shapely.make_valid(out[invalid])
    return out
