"""Where patches come from: torchgeo samplers run per split region, snapped to the catalog's pixel grid.

torchgeo 0.8's samplers take ONE polygon as ``roi``, clip the dataset index to it and draw windows inside the
clipped footprint's bounding box (a tile smaller than the patch is skipped). So each region (one block, or one
part of a drawn region; see :mod:`geossl.data.regions`) gets its own sampler, on a box that is the region's
bounding box grown to at least one patch (and kept inside the imagery); the pixels of a patch that fall outside
its region are masked later (:class:`geossl.data.patches.PatchDataset`). A query is a :class:`PatchQuery`: the
window's top-left pixel on the catalog grid, the index of its region and the symmetry of its weak view.

Random windows are drawn item by item: item ``i`` of a run (counted over all its epochs) comes from its own
generator, :func:`geossl.data.rng.draws` ``(seed, stream, rank, i)``, so it is the same whenever it is drawn, in
particular after a resume.

Class-balanced windows (``labeled_sampling: class_balanced``, labeled windows only): given the labeled pixel
positions of each class (:func:`geossl.data.regions.labeled_positions`), an item draws a class uniformly among
the classes that have positions, then one of that class's positions, then a window that contains it at a
uniformly random offset, kept inside its region's box (a region's box always holds a whole window). So each
present class is in at least ``1 / n_classes`` of the windows, however few pixels it has (Zion's 1/8 labeled
blocks hold 67 Water pixels of 126,000: 9.5 % of uniform 64 px windows hold one, 45 % of class-balanced ones).

Spatial pairs (cross-view): the partner of a window at ``(row, col)`` sits at ``(row + dy, col + dx)`` with
``|dy| = round((1 - fy) * size)``, ``|dx| = round((1 - fx) * size)``, where the overlap share of the area
``f ~ U(overlap)``, ``fy ~ U(f, 1)``, ``fx = f / fy`` and the signs are random; the partner is then moved
(if needed) to stay inside the region's box, which can only enlarge the overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import shapely
import torch
from torch.utils.data import Sampler
from torchgeo.datasets import GeoDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler
from torchgeo.samplers.utils import get_random_bounding_box

from geossl.data.regions import ClassPositions, PixelGrid, Region
from geossl.data.rng import draws
from geossl.data.views import random_dihedral


@dataclass(frozen=True)
class PatchQuery:
    """A square window of the catalog grid (top-left ``row``, ``col``), the index of its region and its view.

    The view is one symmetry of the square (:func:`geossl.data.views.dihedral`): ``rot`` quarter turns after
    a mirror if ``flip``; the identity for evaluation windows.
    """

    row: int
    col: int
    region: int
    rot: int = 0
    flip: bool = False


def dataset_grid(dataset: GeoDataset) -> PixelGrid:
    """The pixel grid of a torchgeo dataset: its bounds' top-left corner and its resolution."""
    x, y, _ = dataset.bounds
    return PixelGrid(left=float(x.start), top=float(y.stop), xres=float(dataset.res[0]), yres=float(dataset.res[1]))


def sampling_box(region: Region, dataset: GeoDataset, size: int) -> shapely.Polygon:
    """The region's bounding box grown (centred) to at least ``size`` pixels per side, shifted inside the data."""
    x, y, _ = dataset.bounds
    xres, yres = dataset.res
    box = []
    for lo, hi, dlo, dhi, span in ((0, 2, x.start, x.stop, size * xres), (1, 3, y.start, y.stop, size * yres)):
        a, b = region.geometry.bounds[lo], region.geometry.bounds[hi]
        grow = max(0.0, span - (b - a)) / 2
        a, b = a - grow, b + grow
        if a < dlo:
            a, b = dlo, b + (dlo - a)
        if b > dhi:
            a, b = a - (b - dhi), dhi
        box.append((max(a, dlo), min(b, dhi)))
    return shapely.box(box[0][0], box[1][0], box[0][1], box[1][1])


class RegionSampler(Sampler[PatchQuery | tuple[PatchQuery, PatchQuery]]):
    """Random windows over a set of regions, each with a random symmetry (the weak view).

    A region is drawn with probability proportional to its area, then a window inside it the way torchgeo's
    :class:`~torchgeo.samplers.RandomGeoSampler` draws one (a tile by area, then a window in the tile; drawn
    here, since torchgeo draws the tile from torch's global generator), then one of the 8 symmetries. With
    ``pairs`` (a range of shares of a window's area) each item is a (window, partner) pair overlapping by a
    random share in that range (module docstring), each with its own symmetry.

    An epoch is ``length`` items. Item ``i`` of the run is drawn from ``draws(seed, stream, rank, i)`` alone
    (each rank of a distributed run draws its own windows).
    Iterating starts at item ``start()`` (default 0; the training data passes the trainer's global step times
    the batch size) and stops at the end of that item's epoch, so a run resumed at any step continues the
    sequence of an uninterrupted run. With ``positions`` (collected over ``regions``) windows are class-balanced
    (module docstring) instead of drawn by area.
    """

    def __init__(self, dataset: GeoDataset, regions: list[Region], size: int, length: int, seed: int = 0,
                 pairs: tuple[float, float] | None = None, stream: str = "windows",
                 rank: int = 0, start: Callable[[], int] = lambda: 0,
                 positions: ClassPositions | None = None) -> None:
        self.grid = dataset_grid(dataset)
        self.size = size
        self.length = length
        self.pairs = pairs
        self.seed, self.stream, self.rank, self.start = seed, stream, rank, start
        self.regions: list[int] = []
        self.samplers: list[RandomGeoSampler] = []
        self.boxes: list[tuple[int, int, int, int]] = []
        for i, region in enumerate(regions):
            roi = sampling_box(region, dataset, size)
            sampler = RandomGeoSampler(dataset, size, length=length, roi=roi)
            if not sampler.bounds:
                continue
            r0, c0 = self.grid.snap(roi.bounds[0], roi.bounds[3])
            r1, c1 = self.grid.snap(roi.bounds[2], roi.bounds[1])
            self.regions.append(i)
            self.samplers.append(sampler)
            self.boxes.append((r0, c0, r1, c1))
        self.weights = torch.tensor([regions[i].geometry.area for i in self.regions], dtype=torch.float64)
        self.positions = None if positions is None else self._grid_positions(positions, len(regions))

    def _grid_positions(self, positions: ClassPositions, n_regions: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per present class: ``(row, col)`` pixels on the grid (n, 2) and the index ``j`` of their sampler."""
        slot = torch.full((n_regions,), -1, dtype=torch.int64)
        slot[torch.tensor(self.regions, dtype=torch.int64)] = torch.arange(len(self.regions))
        out = []
        for xy, region in zip(positions.xy, positions.region, strict=True):
            j = slot[torch.from_numpy(region.astype("int64"))]
            rows = torch.from_numpy((self.grid.top - xy[:, 1]) / self.grid.yres).floor().long()
            cols = torch.from_numpy((xy[:, 0] - self.grid.left) / self.grid.xres).floor().long()
            keep = j >= 0
            if bool(keep.any()):
                out.append((torch.stack([rows, cols], dim=1)[keep], j[keep]))
        if not out:
            raise ValueError("class-balanced sampling: no labeled pixel lies in a region that holds a window")
        return out

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[PatchQuery | tuple[PatchQuery, PatchQuery]]:
        first = self.start()
        return (self.item(i) for i in range(first, first - first % self.length + self.length))

    def item(self, index: int) -> PatchQuery | tuple[PatchQuery, PatchQuery]:
        """Item ``index`` of the run: a query, or a (query, partner) pair."""
        g = draws(self.seed, self.stream, self.rank, index)
        j, row, col = self._by_area(g) if self.positions is None else self._by_class(g)
        query = PatchQuery(row, col, self.regions[j], *random_dihedral(g))
        return (query, self._partner(query, self.boxes[j], g, self.pairs)) if self.pairs is not None else query

    def _by_area(self, g: torch.Generator) -> tuple[int, int, int]:
        """A region by area, a tile by area, a window in the tile: ``(sampler index, row, col)``."""
        j = int(torch.multinomial(self.weights, 1, generator=g))
        sampler = self.samplers[j]
        tile = int(torch.multinomial(sampler.areas, 1, generator=g))
        x, y = get_random_bounding_box(sampler.bounds[tile], sampler.size, sampler.res, g)
        return (j, *self.grid.snap(x.start, y.stop))

    def _by_class(self, g: torch.Generator) -> tuple[int, int, int]:
        """A present class uniformly, one of its pixels, a window holding it inside the region's box."""
        assert self.positions is not None
        pixels, owner = self.positions[int(torch.randint(len(self.positions), (), generator=g))]
        k = int(torch.randint(len(owner), (), generator=g))
        j, (r, c) = int(owner[k]), pixels[k].tolist()
        r0, c0, r1, c1 = self.boxes[j]
        corner = []
        for p, lo, hi in ((r, r0, r1), (c, c0, c1)):
            first, last = max(p - self.size + 1, lo), max(lo, min(p, hi - self.size))
            offset = int(torch.randint(max(1, last - first + 1), (), generator=g))
            corner.append(min(first + offset, max(lo, hi - self.size)))
        return j, corner[0], corner[1]

    def _partner(self, query: PatchQuery, box: tuple[int, int, int, int], g: torch.Generator,
                 overlap: tuple[float, float]) -> PatchQuery:
        lo, hi = overlap
        f = lo + (hi - lo) * float(torch.rand((), generator=g))
        fy = f + (1 - f) * float(torch.rand((), generator=g))
        fx = f / fy
        sy, sx = (1 if float(torch.rand((), generator=g)) < 0.5 else -1 for _ in range(2))
        row = query.row + sy * round((1 - fy) * self.size)
        col = query.col + sx * round((1 - fx) * self.size)
        r0, c0, r1, c1 = box
        row = min(max(row, r0), max(r0, r1 - self.size))
        col = min(max(col, c0), max(c0, c1 - self.size))
        return PatchQuery(row, col, query.region, *random_dihedral(g))


class RegionGridSampler(Sampler[PatchQuery]):
    """Non-overlapping windows covering every region (``GridGeoSampler`` with stride = size, per region).

    Windows of neighbouring regions may overlap, but each pixel is later counted only within its own region, so
    every pixel of a split is evaluated exactly once. With ``world_size > 1`` rank ``r`` takes windows
    ``r, r + world_size, ...``.
    """

    def __init__(self, dataset: GeoDataset, regions: list[Region], size: int, rank: int = 0,
                 world_size: int = 1) -> None:
        grid = dataset_grid(dataset)
        queries: dict[tuple[int, int, int], PatchQuery] = {}
        for i, region in enumerate(regions):
            roi = sampling_box(region, dataset, size)
            for x, y, _ in GridGeoSampler(dataset, size, stride=size, roi=roi):
                row, col = grid.snap(x.start, y.stop)
                queries.setdefault((i, row, col), PatchQuery(row, col, i))
        self.queries = list(queries.values())[rank::world_size]

    def __len__(self) -> int:
        return len(self.queries)

    def __iter__(self) -> Iterator[PatchQuery]:
        return iter(self.queries)
