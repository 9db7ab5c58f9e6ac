"""Pixels in, model inputs out: band normalisation and class-id encoding, in torch.

:class:`Normalizer` computes exactly what :meth:`geossl.models.ModelBundle.normalize` computes (the bundle is
what prediction uses), so a model sees the same numbers in training and in prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from geossl.catalog import Catalog
from geossl.manifest import ClassDef

#: Index of "no label" in encoded label tensors (cross-entropy's ``ignore_index``).
IGNORE = -1


@dataclass(frozen=True)
class Normalizer:
    """``(x - mean) / std`` per band; pixels where any band is nodata or not finite become 0 in every band."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    nodata: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mean", torch.tensor(self.mean, dtype=torch.float32)[:, None, None])
        object.__setattr__(self, "_std", torch.tensor(self.std, dtype=torch.float32)[:, None, None].clamp_min(1e-6))

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Normalizer:
        """Band statistics of the catalog (over its valid pixels)."""
        return cls(mean=tuple(float(s["mean"]) for s in catalog.band_stats),
                   std=tuple(float(s["std"]) for s in catalog.band_stats), nodata=catalog.nodata)

    def __call__(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """``(bands, h, w)`` raw values → normalised float32 image and the valid mask ``(h, w)``."""
        x = image.to(torch.float32)
        valid = torch.isfinite(x).all(dim=0)
        if self.nodata is not None and not math.isnan(self.nodata):
            valid &= ~(x == self.nodata).any(dim=0)
        x = (x - self._mean) / self._std
        return torch.where(valid, x, torch.zeros(())), valid


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
