"""torchgeo datasets over an ingested catalog: the image COGs, the label COGs and the prior COGs.

Every COG of a catalog is on the same target grid (ingest aligned them), so both datasets share one CRS and
resolution and a query reads pixels without resampling as long as it is snapped to that grid
(:func:`snap_bounds`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rasterio.windows import Window
from torch import Tensor
from torchgeo.datasets import GeoDataset, IntersectionDataset, RasterDataset

from geossl.catalog import CATALOG_NAME, Catalog
from geossl.errors import InputError
from geossl.io.valid import read_mask


class _CatalogRasters(RasterDataset):
    """A :class:`RasterDataset` whose index lookups are computed once.

    torchgeo recomputes ``bounds`` from its GeoDataFrame index on every query (twice per sample), and filters
    the GeoDataFrame (time overlap, then ``cx``) for every window it reads, which costs more than reading the
    pixels. The index of a catalog never changes after construction (one CRS and resolution), so the bounds,
    the files' footprints and the time filter are cached, and dropped when the index is replaced (a CRS change).
    The files a query reads, and their order, are the ones torchgeo's filter gives (tested).
    """

    filename_glob = "*.tif"

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """The sample of :class:`RasterDataset` for ``query`` (same files, same pixels), looked up in arrays."""
        x, y, t = self._disambiguate_slice(query)
        if self.separate_files or t.step not in (None, 1):
            return super().__getitem__(query)
        files = self._files_in(x, y, t)
        if not files:
            raise IndexError(f"query: {query} not found in index with bounds: {self.bounds}")
        data = self._merge_files(files, query, self.band_indexes).to(self.dtype)
        sample: dict[str, Any] = {"crs": self.crs, "bounds": query}
        if self.is_image:
            sample["image"] = data
            sample["valid"] = self._covered(files, x, y)
        else:
            sample["mask"] = data.squeeze(0)
        if self.transforms is not None:
            sample = self.transforms(sample)
        return sample

    def _covered(self, files: list[str], x: slice, y: slice) -> Tensor:
        """``(h, w)`` bool: the query's pixels that one of ``files`` covers and its own mask keeps.

        torchgeo's merge fills the rest with 0 (or nodata), which may be a valid value: this says which they are.
        The files are on the query's grid (a catalog's are), so the windows are whole pixels.
        """
        shape = (round((y.stop - y.start) / y.step), round((x.stop - x.start) / x.step))
        valid = np.zeros(shape, dtype=bool)
        for path in files:
            src = self._cached_load_warp_file(path) if self.cache else self._load_warp_file(path)
            row = round((src.transform.f - y.stop) / -src.transform.e)
            col = round((x.start - src.transform.c) / src.transform.a)
            r0, c0 = max(row, 0), max(col, 0)
            r1, c1 = min(row + shape[0], src.height), min(col + shape[1], src.width)
            if r1 > r0 and c1 > c0:
                mask = read_mask(src, Window(c0, r0, c1 - c0, r1 - r0))
                valid[r0 - row : r1 - row, c0 - col : c1 - col] |= True if mask is None else mask > 0
        return torch.from_numpy(valid)

    def _files_in(self, x: slice, y: slice, t: slice) -> list[str]:
        """The files whose footprint box meets the query's box (edges included, as ``cx``), in index order."""
        cached = self.__dict__.get("_footprints")
        if cached is None or cached[0] is not self.index:
            in_time: dict[tuple[Any, Any], np.ndarray] = {}
            cached = (self.index, self.index.geometry.bounds.to_numpy(), list(self.index.filepath), in_time)
            self.__dict__["_footprints"] = cached
        _, boxes, paths, in_time = cached
        span = (t.start, t.stop)
        if span not in in_time:  # torchgeo's own time filter, once per time span
            in_time[span] = np.asarray(self.index.index.overlaps(pd.Interval(*span)))
        keep = (in_time[span] & (boxes[:, 0] <= x.stop) & (boxes[:, 2] >= x.start)
                & (boxes[:, 1] <= y.stop) & (boxes[:, 3] >= y.start))
        return [paths[i] for i in np.flatnonzero(keep)]

    @property
    def bounds(self) -> tuple[slice, slice, slice]:
        """Bounding x, y and t slices of the index (cached)."""
        cached = self.__dict__.get("_bounds")
        if cached is None or cached[0] is not self.index:
            cached = (self.index, RasterDataset.bounds.fget(self))  # type: ignore[attr-defined]
            self.__dict__["_bounds"] = cached
        bounds: tuple[slice, slice, slice] = cached[1]
        return bounds


class ImageRasters(_CatalogRasters):
    """The catalog's analysis-ready image COGs (all bands, raw values as float32).

    A sample holds ``valid`` besides ``image``: the pixels a file covers and its own mask keeps
    (:mod:`geossl.io.valid`; the nodata value is the normaliser's to test).
    """

    is_image = True


class LabelRasters(_CatalogRasters):
    """The catalog's label COGs (raw class ids as int64; the ignore id is their nodata)."""

    is_image = False


class PriorRasters(_CatalogRasters):
    """The catalog's prior COGs (manifest ``prior:``; class ids as int64, the ignore id their nodata), key ``prior``.

    Read beside the images (and labels) in one sample, so under a key of their own rather than ``mask``.
    """

    is_image = False

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """The sample of :class:`RasterDataset`, its ``mask`` renamed ``prior``."""
        sample = super().__getitem__(query)
        sample["prior"] = sample.pop("mask")
        return sample


def catalog_rasters(catalog: Catalog, root: Path) -> tuple[ImageRasters, LabelRasters | None]:
    """The image dataset and, when the catalog has labels, the label dataset, on the catalog's grid."""
    images = [catalog.path_of(root, s.image) for s in catalog.scenes]
    for path in images:
        if not path.is_file():
            raise InputError(path, "image named in the catalog is missing; run `geossl ingest` again")
    res = (catalog.resolution[0], catalog.resolution[1])
    image_ds = ImageRasters(paths=[str(p) for p in images], res=res, cache=True)
    labels = [catalog.path_of(root, s.labels) for s in catalog.scenes if s.labels is not None]
    if not labels:
        return image_ds, None
    for path in labels:
        if not path.is_file():
            raise InputError(path, "labels named in the catalog are missing; run `geossl ingest` again")
    label_ds = LabelRasters(paths=[str(p) for p in labels], crs=image_ds.crs, res=image_ds.res, cache=True)
    return image_ds, label_ds


def with_labels(images: ImageRasters, labels: LabelRasters) -> IntersectionDataset:
    """Images and labels read together (``image`` and ``mask`` in one sample)."""
    return IntersectionDataset(images, labels)


def with_prior(source: GeoDataset, catalog: Catalog, root: Path) -> IntersectionDataset:
    """``source`` (images, or images and labels) read together with the catalog's prior maps (``prior``).

    Raises :class:`InputError` when a scene has no prior map or its file is missing.
    """
    paths = [catalog.path_of(root, s.prior) if s.prior else None for s in catalog.scenes]
    if None in paths:
        raise InputError(root / CATALOG_NAME, "the catalog has no prior map (manifest prior:) for every scene")
    for path in paths:
        assert path is not None
        if not path.is_file():
            raise InputError(path, "prior map named in the catalog is missing; run `geossl ingest` again")
    priors = PriorRasters(paths=[str(p) for p in paths], crs=source.crs, res=source.res, cache=True)
    return IntersectionDataset(source, priors)
