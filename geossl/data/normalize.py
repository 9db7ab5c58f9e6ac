"""Pixels in, model inputs out: band normalisation (for training and prediction alike) and class-id encoding.

:class:`Normalizer` computes on NumPy arrays (prediction normalises whole row bands of windows read with rasterio)
and takes torch tensors too (training patches), so a model sees the very same numbers in training and in
prediction: :meth:`geossl.models.ModelBundle.normalize` is this class with the bundle's statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import overload

import numpy as np
import torch
from torch import Tensor

from geossl.catalog import Catalog
from geossl.io.valid import valid_pixels
from geossl.manifest import ClassDef

#: Index of "no label" in encoded label tensors (cross-entropy's ``ignore_index``).
IGNORE = -1
#: Smallest standard deviation divided by: a constant band becomes 0, not a division by zero.
MIN_STD = 1e-6


@dataclass(frozen=True)
class Normalizer:
    """``(x - mean) / std`` per band in float32; invalid pixels (:mod:`geossl.io.valid`) become 0 in every band.

    A pixel is invalid where the raster's own mask (given with the pixels) says so, any band is nodata, or any
    band is not finite.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    nodata: float | None = None
    _mean: np.ndarray = field(init=False, repr=False, compare=False)
    _std: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mean", np.asarray(self.mean, dtype=np.float32)[:, None, None])
        object.__setattr__(self, "_std", np.maximum(np.asarray(self.std, dtype=np.float32), np.float32(MIN_STD))
                           [:, None, None])

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Normalizer:
        """Band statistics of the catalog (over its valid pixels)."""
        return cls(mean=tuple(s.mean for s in catalog.band_stats), std=tuple(s.std for s in catalog.band_stats),
                   nodata=catalog.nodata)

    @overload
    def __call__(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def __call__(self, image: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

    def __call__(self, image: np.ndarray | Tensor, mask: np.ndarray | Tensor | None = None
                 ) -> tuple[np.ndarray, np.ndarray] | tuple[Tensor, Tensor]:
        """``(bands, h, w)`` raw values → normalised float32 image and the valid mask ``(h, w)``.

        ``mask`` ``(h, w)``: the raster's own mask of these pixels (0 or False = invalid), when it has one.
        NumPy arrays for an array; tensors (on the image's device) for a tensor.
        """
        if isinstance(mask, Tensor):
            mask = mask.detach().cpu().numpy()
        if isinstance(image, Tensor):
            x, valid = self._normalize(image.detach().cpu().numpy(), mask)
            return torch.from_numpy(x).to(image.device), torch.from_numpy(valid).to(image.device)
        return self._normalize(image, mask)

    def _normalize(self, image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        x = image.astype(np.float32)
        valid = valid_pixels(image, self.nodata, mask)
        x -= self._mean
        x /= self._std
        x[:, ~valid] = 0.0
        return x, valid


class LabelEncoder:
    """Raw class ids → channel indices ``0..K-1`` (the order of ``classes``); anything else → :data:`IGNORE`."""

    def __init__(self, classes: list[ClassDef]) -> None:
        self.ids = [c.id for c in classes]
        self.lut = torch.full((65536,), IGNORE, dtype=torch.long)
        self.lut[torch.tensor(self.ids)] = torch.arange(len(self.ids))

    def __call__(self, raw: Tensor) -> Tensor:
        """Encode a tensor of raw ids (any integer dtype; values outside 0..65535 → ignore)."""
        raw = raw.to(torch.long)
        inside = (raw >= 0) & (raw < 65536)
        # index_select, not lut[raw]: advanced indexing is ~100x slower on CPU for small tensors
        encoded = self.lut.index_select(0, raw.clamp(0, 65535).flatten()).view_as(raw)
        return torch.where(inside, encoded, IGNORE)
