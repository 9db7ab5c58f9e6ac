"""Patches as tensors: read a :class:`PatchQuery` through torchgeo, normalise, mask, apply its weak view.

A sample is a dict of tensors::

    image   (C, S, S) float32  normalised bands, 0 where invalid
    valid   (S, S)    bool     image valid (covered, its mask, not nodata: geossl.io.valid) and inside the query's
                               region
    mask    (S, S)    int64    class index 0..K-1 or IGNORE (labeled and evaluation patches)
    truth   (S, S)    int64    hidden truth of unlabeled patches (diagnostics only; never given to a loss)
    prior   (S, S)    int64    class index 0..K-1 of the catalog's prior map or IGNORE (unlabeled patches, when
                               the source reads priors: geossl.data.rasters.with_prior)
    origin  (2,)      int64    (row, col) of the window's top-left pixel on the catalog grid
    geom    (2,)      int64    (quarter turns, flip) of the weak view: see geossl.data.views.dihedral

Everything of a sample (image, masks, labels) gets the query's symmetry, so ``geom`` and ``origin`` say
exactly which map pixel each tensor pixel shows. A patch is a pure function of its query: the random choices
(window and symmetry) are the sampler's.
"""

from __future__ import annotations

from typing import Any, Literal

import rasterio.features
import torch
from affine import Affine
from torch import Tensor
from torch.utils.data import Dataset
from torchgeo.datasets import GeoDataset

from geossl.data.normalize import IGNORE, LabelEncoder, Normalizer
from geossl.data.regions import Region
from geossl.data.samplers import PatchQuery, dataset_grid
from geossl.data.views import dihedral

LabelKey = Literal["mask", "truth"]


class PatchDataset(Dataset[list[dict[str, Tensor]]]):
    """Reads patches (or pairs of patches) of ``size`` pixels from ``source`` (images, or images & labels).

    Indexed by :class:`PatchQuery` (or a tuple of them); the samplers of :mod:`geossl.data.samplers` decide
    how many there are, where they are and which symmetry they show. ``encoder`` encodes the class ids of the
    labels (under ``label_key``) and of the prior map, for those the source reads.
    """

    def __init__(self, source: GeoDataset, regions: list[Region], size: int, normalizer: Normalizer,
                 encoder: LabelEncoder | None = None, label_key: LabelKey = "mask") -> None:
        self.source = source
        self.regions = regions
        self.size = size
        self.grid = dataset_grid(source)
        self.normalizer = normalizer
        self.encoder = encoder
        self.label_key = label_key

    def __getitem__(self, query: PatchQuery | tuple[PatchQuery, ...]) -> list[dict[str, Tensor]]:
        queries = query if isinstance(query, tuple) else (query,)
        return [self.read(q) for q in queries]

    def read(self, query: PatchQuery) -> dict[str, Tensor]:
        """One patch: read, normalise, mask to its region, then the query's symmetry."""
        xmin, ymin, xmax, ymax = self.grid.window_bounds(query.row, query.col, self.size)
        raw = self.source[slice(xmin, xmax), slice(ymin, ymax)]
        image, valid = self.normalizer(raw["image"], raw.get("valid"))
        transform = Affine(self.grid.xres, 0, xmin, 0, -self.grid.yres, ymax)
        inside = rasterio.features.geometry_mask([self.regions[query.region].geometry], (self.size, self.size),
                                                 transform, invert=True)
        valid &= torch.from_numpy(inside)
        image = torch.where(valid, image, torch.zeros(()))
        sample: dict[str, Tensor] = {"image": image, "valid": valid}
        if self.encoder is not None and "mask" in raw:
            labels = self.encoder(raw["mask"])
            sample[self.label_key] = torch.where(valid, labels, IGNORE)
        if self.encoder is not None and "prior" in raw:
            sample["prior"] = torch.where(valid, self.encoder(raw["prior"]), IGNORE)
        sample = {k: dihedral(v, query.rot, query.flip) for k, v in sample.items()}
        sample["origin"] = torch.tensor([query.row, query.col])
        sample["geom"] = torch.tensor([query.rot, int(query.flip)])
        return sample


def collate_patches(items: list[list[dict[str, Tensor]]]) -> dict[str, Any]:
    """Stack patches into a batch; pairs stay next to each other.

    ``partner[i]`` is the index of i's partner (``-1`` without one).
    """
    flat = [s for group in items for s in group]
    batch: dict[str, Any] = {k: torch.stack([s[k] for s in flat]) for k in flat[0]}
    partner: list[int] = []
    for group in items:
        start = len(partner)
        partner.extend([start + 1, start] if len(group) == 2 else [-1] * len(group))
    batch["partner"] = torch.tensor(partner)
    return batch
