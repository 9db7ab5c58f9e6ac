"""One tile of the class raster → polygons: read with a one-pixel halo, trace, split finished and border pieces.

A *piece* is a region of the tile. Pieces that touch a border shared with another tile may continue there:
they are returned as shapely polygons with the piece ids along each shared border, for
:mod:`geossl.vectorize.merge` to join. All other pieces are finished polygons, returned as WKB straight from
the tracer's arrays. Runs on a Dask worker: it opens its own dataset handles.

Coordinates go from the tile's pixel corners to the raster's (integers) and then to map coordinates by the
same affine formula for every vertex, so a vertex shared by polygons of different tiles gets bit-identical map
coordinates, which the merge relies on.

With ``simplify``, the tile's polygons are simplified here, as one coverage with the tile's shared sides held
fixed (:mod:`geossl.vectorize.simplify`), before they are split into finished and border pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
import shapely
from rasterio.windows import Window

from geossl.vectorize.ragged import RaggedPolygons
from geossl.vectorize.simplify import fixed_vertices, simplify_coverage, simplify_piece, trace_with_outside
from geossl.vectorize.trace import Regions, Rings, label_regions, trace


@dataclass(frozen=True)
class TileSpec:
    """What one task needs to polygonize a tile.

    ``read`` is the tile grown by one pixel and clipped to the raster; ``shared`` tells whether the top, bottom,
    left and right sides border another tile; ``transform`` is the raster's affine ``(a, b, c, d, e, f)`` as
    in :class:`affine.Affine` (``x = a*col + b*row + c``, ``y = d*col + e*row + f``); ``simplify`` is the
    coverage simplification tolerance in map units (0: none).
    """

    path: str
    window: Window
    read: Window
    shared: tuple[bool, bool, bool, bool]
    transform: tuple[float, float, float, float, float, float]
    confidence_path: str | None = None
    confidence_nodata: float | None = None
    simplify: float = 0.0


@dataclass
class Attributes:
    """Per-polygon attributes: class value, pixel count, and the sum and count of valid confidence values."""

    value: np.ndarray
    count: np.ndarray
    conf_sum: np.ndarray
    conf_n: np.ndarray

    @classmethod
    def empty(cls) -> Attributes:
        """No polygons."""
        z = np.zeros(0)
        return cls(z.astype(np.int64), z.astype(np.int64), z, z.astype(np.int64))

    def take(self, index: np.ndarray | slice) -> Attributes:
        """The attributes of the polygons at ``index``."""
        return Attributes(self.value[index], self.count[index], self.conf_sum[index], self.conf_n[index])

    @classmethod
    def concat(cls, parts: list[Attributes]) -> Attributes:
        """All polygons of ``parts``, in order."""
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("value", "count", "conf_sum",
                                                                                "conf_n")))

    def __len__(self) -> int:
        return len(self.value)


@dataclass
class TileResult:
    """Polygons of one tile in map coordinates: finished ones as WKB, border pieces as shapely polygons.

    ``bounds`` are the finished polygons' ``(n, 4)`` boxes; ``area`` their areas when simplified (else None: the
    pixel counts tell).

    ``edges`` holds, for the top, bottom, left and right sides, the index into the border pieces of each pixel
    along that side (-1 for nodata, and for sides that are not shared).
    """

    wkb: np.ndarray
    attrs: Attributes
    bounds: np.ndarray
    border_geoms: np.ndarray
    border_attrs: Attributes
    edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    area: np.ndarray | None = None


def polygonize_tile(spec: TileSpec) -> TileResult:
    """Polygonize one tile (see the module docstring)."""
    w, read = spec.window, spec.read
    with rasterio.open(spec.path) as src:
        values = src.read(1, window=read)
        valid = src.read_masks(1, window=read) > 0  # GDAL's mask: nodata value, internal masks
    # Core (the tile itself) and a one-pixel ring around it, in the read array's frame.
    r0, c0 = w.row_off - read.row_off, w.col_off - read.col_off
    core = (slice(r0, r0 + w.height), slice(c0, c0 + w.width))
    regions = label_regions(values[core], valid[core])
    ring = _halo_codes(values, valid, r0, c0, w.height, w.width)
    outside = None
    if spec.simplify > 0 and any(spec.shared):
        rings, outside = trace_with_outside(regions, ring, _off_raster(r0, c0, values.shape, w.height, w.width))
    else:
        rings = trace(regions, ring)
    attrs = _attributes(spec, regions, rings)

    # Border pieces: regions with a pixel on a shared side.
    labels = regions.labels
    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    on_border = np.zeros(regions.n + 1, dtype=bool)
    for shared, side in zip(spec.shared, sides, strict=True):
        if shared:
            on_border[side] = True
    on_border[0] = False
    border = on_border[rings.label]
    index_of = np.full(regions.n + 1, -1, dtype=np.int64)
    index_of[rings.label[border]] = np.arange(int(border.sum()))
    edges = tuple(index_of[side] if shared else np.full(len(side), -1, dtype=np.int64)
                  for shared, side in zip(spec.shared, sides, strict=True))
    if spec.simplify > 0:
        return _simplified(spec, rings.polygons, outside, border, attrs, edges)  # type: ignore[arg-type]
    polys = rings.polygons.shifted(w.col_off, w.row_off).transformed(spec.transform)
    finished = polys.take(~border)
    return TileResult(wkb=finished.wkb(), attrs=attrs.take(~border), bounds=finished.bounds(),
                      border_geoms=polys.take(border).geometries(), border_attrs=attrs.take(border),
                      edges=edges)  # type: ignore[arg-type]


def _simplified(spec: TileSpec, polys: RaggedPolygons, outside: RaggedPolygons | None, border: np.ndarray,
                attrs: Attributes, edges: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> TileResult:
    """The tile's result with its polygons (``polys``, ``outside``: in the tile's pixel frame) simplified.

    As a piece beside its outside, shared sides held fixed; a tile that borders no other (``outside`` None) is
    the whole coverage.
    """
    w = spec.window

    def to_map(p: RaggedPolygons) -> RaggedPolygons:
        return p.shifted(w.col_off, w.row_off).transformed(spec.transform)

    if outside is None:
        geoms = simplify_coverage(to_map(polys).geometries(), spec.simplify)
    else:
        geoms = simplify_piece(to_map(polys), to_map(outside), spec.simplify,
                               fixed_vertices(polys, outside, spec.shared, w.height, w.width))
    finished = geoms[~border]
    return TileResult(wkb=shapely.to_wkb(finished), attrs=attrs.take(~border),
                      bounds=shapely.bounds(finished).reshape(-1, 4), border_geoms=geoms[border],
                      border_attrs=attrs.take(border), edges=edges, area=shapely.area(finished))


def _off_raster(r0: int, c0: int, shape: tuple[int, ...], h: int, w: int) -> np.ndarray:
    """``(h + 2, w + 2)``: true for the pixels of the ring around the core that lie beyond the raster.

    The read array is the core grown by one pixel and clipped to the raster, with the core at ``(r0, c0)``.
    """
    rows, cols = shape
    inside = np.zeros((h + 2, w + 2), dtype=bool)
    inside[max(0, 1 - r0):min(h + 2, rows - r0 + 1), max(0, 1 - c0):min(w + 2, cols - c0 + 1)] = True
    return ~inside


def _halo_codes(values: np.ndarray, valid: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Codes of the one-pixel ring around the core, for :func:`geossl.vectorize.trace.trace`.

    0 for nodata or off the raster, ``-(k + 1)`` for a valid pixel of the ``k``-th distinct value; the inner
    part is unused.
    """
    rows, cols = values.shape
    rr0, rr1 = max(0, r0 - 1), min(rows, r0 + h + 1)
    cc0, cc1 = max(0, c0 - 1), min(cols, c0 + w + 1)
    dst = (slice(rr0 - (r0 - 1), rr1 - (r0 - 1)), slice(cc0 - (c0 - 1), cc1 - (c0 - 1)))
    around = np.zeros((h + 2, w + 2), dtype=values.dtype)
    around[dst] = values[rr0:rr1, cc0:cc1]
    ok = np.zeros((h + 2, w + 2), dtype=bool)
    ok[dst] = valid[rr0:rr1, cc0:cc1]
    ok[1:-1, 1:-1] = False
    _, rank = np.unique(around[ok], return_inverse=True)
    codes = np.zeros((h + 2, w + 2), dtype=np.int32)
    codes[ok] = -(rank.astype(np.int32) + 1)
    return codes


def _attributes(spec: TileSpec, regions: Regions, rings: Rings) -> Attributes:
    """Attributes of the traced polygons (in ``rings.label`` order)."""
    n = regions.n + 1
    conf_sum: np.ndarray = np.zeros(n)
    conf_n = np.zeros(n, dtype=np.int64)
    if spec.confidence_path is not None:
        with rasterio.open(spec.confidence_path) as src:
            conf = src.read(1, window=spec.window).astype(np.float64)
        ok = np.isfinite(conf)
        if spec.confidence_nodata is not None:
            ok &= conf != spec.confidence_nodata
        lab = regions.labels.ravel()
        conf_sum = np.bincount(lab, weights=np.where(ok, conf, 0.0).ravel(), minlength=n)
        conf_n = np.bincount(lab, weights=ok.ravel(), minlength=n).astype(np.int64)
    idx = rings.label
    return Attributes(regions.value[idx], regions.count[idx], conf_sum[idx], conf_n[idx])
