"""Pretraining windows: random windows over every ingested scene, normalised exactly as training normalises them.

No label is read, so the whole imagery is used, whatever the splits (the test area's pixels too: pretraining
sees no label of them). Windows come from :class:`geossl.data.samplers.RegionSampler` with one region per
scene (its footprint on the catalog grid) and are read by :class:`geossl.data.patches.PatchDataset`, the
readers of ``geossl train``: the same torchgeo dataset, grid snapping, nodata masking and
:class:`~geossl.data.normalize.Normalizer`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import shapely
from torch.utils.data import DataLoader

from geossl.catalog import Catalog
from geossl.data.normalize import Normalizer
from geossl.data.patches import PatchDataset, collate_patches
from geossl.data.rasters import catalog_rasters
from geossl.data.regions import Region
from geossl.data.samplers import RegionSampler
from geossl.errors import InputError


def scene_regions(catalog: Catalog) -> list[Region]:
    """One region per scene, of no split: its bounds on the catalog grid."""
    return [Region(key=s.id, split=None, geometry=shapely.box(*s.bounds)) for s in catalog.scenes]


def window_loader(catalog: Catalog, root: Path, size: int, batch_size: int, batches: int, seed: int,
                  workers: int = 0) -> DataLoader[Any]:
    """``batches`` batches of ``batch_size`` random windows (``batch["image"]``: ``(N, bands, size, size)``)."""
    largest = max(min(s.width, s.height) for s in catalog.scenes)
    if size > largest:
        raise InputError("--patch-size", f"{size} px is larger than every scene (the largest fits {largest} px "
                                         "windows)")
    images, _ = catalog_rasters(catalog, root)
    regions = scene_regions(catalog)
    dataset = PatchDataset(images, regions, size, Normalizer.from_catalog(catalog))
    sampler = RegionSampler(images, regions, size, batches * batch_size, seed=seed)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_patches,
                      num_workers=workers, drop_last=True, persistent_workers=workers > 0)
