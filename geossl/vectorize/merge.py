"""Join the pieces of regions cut by tile borders, so the output equals a one-pass polygonize.

Two border pieces belong to one region when, across the border between their tiles, a pixel of one and the
adjacent pixel of the other have the same class (4-connectivity: pixels facing each other, not diagonal
ones). Those pairs come straight from the pixel ids along each shared side; a union-find joins them into
groups.

Dissolving a group only needs the pieces' *shells*: a piece's holes are enclosed by the piece itself inside
its tile, so they stay holes of the region unchanged. The shells (polygons without holes, usually few
vertices) are joined with ``shapely.coverage_union_all``: they are edge-matched (each tile's polygons have a
vertex wherever the pixels across its border change, see :mod:`.trace`), so shared edges simply cancel,
without a general overlay. The result's rings plus all the pieces' holes make the region. Shared vertices
have bit-identical coordinates (:mod:`.tile`), so this is exact, and it is checked: one polygon whose area is
the shells' total (``union_all`` is the fallback). This matters for land cover: one forest region crossing
every tile can carry 10^5 holes, which a general union would process again and again.

Tiles arrive in row-major order. After tile row ``i`` is in, a group that has no piece on the bottom side of
row ``i`` can grow no more: it is finished and handed back. So only the pieces along about one row of tile
borders are held at a time (plus regions that keep going down, kept as one shell and their holes).
"""

from __future__ import annotations

import numpy as np
import shapely

from geossl.vectorize.tile import Attributes, TileResult


class BorderMerger:
    """Collects the border pieces of tiles (in row-major order) and returns finished, merged regions."""

    def __init__(self, n_rows: int, n_cols: int):
        self.n_rows, self.n_cols = n_rows, n_cols
        self.parent: dict[int, int] = {}
        self.shell: dict[int, shapely.Geometry] = {}  # piece id -> shell (may have holes after a union)
        self.holes: dict[int, list[np.ndarray]] = {}  # piece id -> arrays of hole rings
        self.attr: dict[int, tuple[int, int, float, int]] = {}  # value, count, conf_sum, conf_n (per root)
        self.bottoms: dict[int, np.ndarray] = {}  # column -> bottom-side ids of the previous/current row
        self.right: np.ndarray | None = None  # right-side ids of the previous tile in this row
        self.next_id = 0

    def _find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if rb < ra:
            ra, rb = rb, ra
        self.parent[rb] = ra
        va, ca, sa, na = self.attr.pop(ra)
        _, cb, sb, nb = self.attr.pop(rb)
        self.attr[ra] = (va, ca + cb, sa + sb, na + nb)

    def _link(self, a: np.ndarray, b: np.ndarray) -> None:
        """Join the pieces facing each other across a border (``a[k]`` faces ``b[k]``) that share a class."""
        both = (a >= 0) & (b >= 0)
        if not both.any():
            return
        pairs = np.unique(np.column_stack([a[both], b[both]]), axis=0)
        for x, y in pairs.tolist():
            if self.attr[self._find(x)][0] == self.attr[self._find(y)][0]:
                self._union(x, y)

    def add(self, i: int, j: int, result: TileResult) -> None:
        """Take the border pieces of tile ``(i, j)``; tiles must come in row-major order."""
        n = len(result.border_geoms)
        ids = np.arange(self.next_id, self.next_id + n)
        self.next_id += n
        a = result.border_attrs
        shells, holes = split_holes(result.border_geoms)
        for k, pid in enumerate(ids.tolist()):
            self.parent[pid] = pid
            self.shell[pid] = shells[k]
            self.holes[pid] = [holes[k]] if len(holes[k]) else []
            self.attr[pid] = (int(a.value[k]), int(a.count[k]), float(a.conf_sum[k]), int(a.conf_n[k]))

        def global_ids(side: np.ndarray) -> np.ndarray:
            return np.where(side >= 0, side + (ids[0] if n else 0), -1)

        top, bottom, left, right = (global_ids(e) for e in result.edges)
        if j > 0 and self.right is not None:
            self._link(self.right, left)
        if i > 0 and j in self.bottoms:
            self._link(self.bottoms.pop(j), top)
        self.right = right
        self.bottoms[j] = bottom
        if j == self.n_cols - 1:
            self.right = None

    def finish_row(self, i: int) -> tuple[np.ndarray, Attributes, np.ndarray, np.ndarray]:
        """After the last tile of row ``i``: the regions that can grow no more.

        Returns their WKB in map coordinates, attributes, bounds ``(n, 4)`` and areas.
        """
        last = i == self.n_rows - 1
        open_roots: set[int] = set()
        if not last:
            for side in self.bottoms.values():
                open_roots.update(self._find(int(p)) for p in np.unique(side[side >= 0]))
        groups: dict[int, list[int]] = {}
        for pid in self.shell:
            groups.setdefault(self._find(pid), []).append(pid)
        done_wkb, done_box, done_area, done_attrs = [], [], [], []
        for root, members in groups.items():
            shell = self.shell[members[0]] if len(members) == 1 else dissolve([self.shell[m] for m in members])
            holes = [h for m in members for h in self.holes[m]]
            for m in members:
                del self.shell[m], self.holes[m]
            if root in open_roots:  # goes on below: keep one shell and the holes so far
                self.shell[root], self.holes[root] = shell, holes
                continue
            region = with_holes(shell, holes)  # to WKB at once: a row's regions are never all held as GEOS objects
            done_wkb.append(shapely.to_wkb(region))
            done_box.append(shapely.bounds(region))
            done_area.append(shapely.area(region))
            done_attrs.append(self.attr.pop(root))
        self._forget_finished()
        if last:
            self.bottoms.clear()
        values = np.array(done_attrs, dtype=np.float64).reshape(-1, 4)
        attrs = Attributes(values[:, 0].astype(np.int64), values[:, 1].astype(np.int64), values[:, 2],
                           values[:, 3].astype(np.int64))
        wkb = np.empty(len(done_wkb), dtype=object)
        wkb[:] = done_wkb
        return wkb, attrs, np.array(done_box, dtype=np.float64).reshape(-1, 4), np.array(done_area, dtype=np.float64)

    def _forget_finished(self) -> None:
        """Drop union-find entries whose group is finished (their root has no attributes left)."""
        stale = [p for p in self.parent if self._find(p) not in self.attr]
        for p in stale:
            self.parent.pop(p)


def split_holes(polygons: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each polygon's shell (a polygon of its exterior ring) and its holes (an array of rings)."""
    if len(polygons) == 0:
        return polygons, []
    shells = shapely.polygons(shapely.get_exterior_ring(polygons))
    rings = shapely.get_rings(polygons)
    n_holes = shapely.get_num_interior_rings(polygons)
    is_hole = np.ones(len(rings), dtype=bool)
    is_hole[np.concatenate([[0], np.cumsum(n_holes + 1)[:-1]]).astype(np.int64)] = False
    return shells, np.split(rings[is_hole], np.cumsum(n_holes)[:-1])


def dissolve(shells: list[shapely.Geometry]) -> shapely.Geometry:
    """One polygon from edge-matched shells of a region, checked; see the module docstring."""
    area = float(np.sum(shapely.area(shells)))
    try:
        merged = shapely.coverage_union_all(shells)
        if merged.geom_type == "Polygon" and abs(shapely.area(merged) - area) <= 1e-9 * area:
            return merged
    except shapely.errors.GEOSException:  # pragma: no cover - not edge-matched: cannot happen for traced tiles
        pass
    return shapely.union_all(shells)  # pragma: no cover


def with_holes(shell: shapely.Geometry, holes: list[np.ndarray]) -> shapely.Geometry:
    """``shell`` (its exterior and any holes) with the rings of ``holes`` added as holes."""
    if not holes:
        return shell
    rings = shapely.get_rings(shell)
    return shapely.polygons(rings[0], holes=np.concatenate([rings[1:], *holes]))
