"""Polygons as ragged coordinate arrays: subsets, affine transform, bounds and WKB, without GEOS objects.

The finished polygons of a tile go straight from the tracer's arrays to WKB bytes for the writer. Building
GEOS geometries only to serialize them again costs ~10 µs a polygon, more than tracing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely


@dataclass(frozen=True)
class RaggedPolygons:
    """Polygons as :func:`shapely.from_ragged_array` takes them.

    Closed rings lie back to back in ``coords``; ``ring_offsets`` bound the rings and ``polygon_offsets`` each
    polygon's rings (exterior first).
    """

    coords: np.ndarray
    ring_offsets: np.ndarray
    polygon_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.polygon_offsets) - 1

    def take(self, mask: np.ndarray) -> RaggedPolygons:
        """The polygons where ``mask`` is true, in order."""
        chosen = np.flatnonzero(mask)
        n_rings = np.diff(self.polygon_offsets)[chosen]
        rings = ranges(self.polygon_offsets[:-1][chosen], n_rings)
        ring_len = np.diff(self.ring_offsets)[rings]
        coords = self.coords[ranges(self.ring_offsets[:-1][rings], ring_len)]
        return RaggedPolygons(coords, _offsets(ring_len), _offsets(n_rings))

    def shifted(self, dx: float, dy: float) -> RaggedPolygons:
        """Coordinates plus ``(dx, dy)``."""
        return RaggedPolygons(self.coords + np.array([dx, dy], dtype=np.float64), self.ring_offsets,
                              self.polygon_offsets)

    def transformed(self, affine: tuple[float, float, float, float, float, float]) -> RaggedPolygons:
        """Coordinates mapped by ``x' = a*x + b*y + c``, ``y' = d*x + e*y + f``."""
        a, b, c, d, e, f = affine
        x, y = self.coords[:, 0], self.coords[:, 1]
        coords = np.column_stack([a * x + b * y + c, d * x + e * y + f])
        return RaggedPolygons(coords, self.ring_offsets, self.polygon_offsets)

    def geometries(self) -> np.ndarray:
        """Shapely polygons."""
        polygons: np.ndarray = shapely.from_ragged_array(shapely.GeometryType.POLYGON, self.coords,
                                                         (self.ring_offsets, self.polygon_offsets))
        return polygons

    def bounds(self) -> np.ndarray:
        """``(n, 4)`` boxes ``minx, miny, maxx, maxy``."""
        if len(self) == 0:
            return np.zeros((0, 4))
        starts = self.ring_offsets[self.polygon_offsets[:-1]]
        lo = np.minimum.reduceat(self.coords, starts, axis=0)
        hi = np.maximum.reduceat(self.coords, starts, axis=0)
        return np.hstack([lo, hi])

    def wkb(self) -> np.ndarray:
        """ISO WKB (little-endian) of each polygon, as an object array of ``bytes``."""
        n = len(self)
        if n == 0:
            return np.zeros(0, dtype=object)
        ring_len = np.diff(self.ring_offsets)
        n_rings = np.diff(self.polygon_offsets)
        ring_bytes = 4 + 16 * ring_len
        ring_end = np.cumsum(ring_bytes)
        poly_rings_bytes = ring_end[self.polygon_offsets[1:] - 1] - np.append(0, ring_end)[self.polygon_offsets[:-1]]
        poly_bytes = 9 + poly_rings_bytes
        poly_start = np.append(0, np.cumsum(poly_bytes)[:-1])
        buf = np.zeros(int(poly_bytes.sum()), dtype=np.uint8)
        buf[poly_start] = 1  # little-endian
        _put_u4(buf, poly_start + 1, np.full(n, 3))  # wkbPolygon
        _put_u4(buf, poly_start + 5, n_rings)
        # Ring k of polygon p starts after p's header and the rings before it in p.
        owner = np.repeat(np.arange(n), n_rings)
        ring_start = poly_start[owner] + 9 + (np.append(0, ring_end)[:-1] -
                                              np.append(0, ring_end)[self.polygon_offsets[:-1]][owner])
        _put_u4(buf, ring_start, ring_len)
        coord_ring = np.repeat(np.arange(len(ring_len)), ring_len)
        coord_pos = ring_start[coord_ring] + 4 + 16 * (np.arange(len(self.coords)) - self.ring_offsets[:-1][coord_ring])
        values = np.ascontiguousarray(self.coords, dtype="<f8").view(np.uint8).reshape(-1, 16)
        buf[coord_pos[:, None] + np.arange(16)] = values
        data = buf.tobytes()
        ends = poly_start + poly_bytes
        return np.array([data[s:e] for s, e in zip(poly_start.tolist(), ends.tolist(), strict=True)], dtype=object)


def _put_u4(buf: np.ndarray, positions: np.ndarray, values: np.ndarray) -> None:
    """Write little-endian uint32 ``values`` at byte ``positions`` of ``buf``."""
    raw = np.ascontiguousarray(values, dtype="<u4").view(np.uint8).reshape(-1, 4)
    buf[positions[:, None] + np.arange(4)] = raw


def _offsets(lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + l)`` for each start ``s`` and length ``l``, without a Python loop."""
    total = int(np.sum(lengths))
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.asarray(starts) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    out: np.ndarray = np.arange(total) + offsets
    return out
