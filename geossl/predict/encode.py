"""Blended class probabilities → the output rasters' pixel values (pure functions).

* class raster: the id of the most probable class (``classes[argmax]``), ``nodata`` where the input was nodata;
  uint8, or uint16 when an id or the nodata value does not fit in a byte;
* confidence: the highest probability scaled to ``1..255`` (``round(255 p)``, at least 1), ``0`` = nodata;
* probabilities: one band per class, ``round(254 p)`` in ``0..254``, ``255`` = nodata (scale ``1/254``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geossl.io.style import ClassLike

CONFIDENCE_NODATA = 0
CONFIDENCE_SCALE = 255
PROBABILITY_NODATA = 255
PROBABILITY_SCALE = 254


def class_nodata(class_ids: Sequence[int], ignore_id: int) -> int:
    """Nodata value of the class raster: ``ignore_id`` unless it is a class, else the first free id from 255."""
    if ignore_id not in class_ids:
        return ignore_id
    free = next(v for v in [255, *range(65535, 255, -1)] if v not in class_ids)
    return int(free)


@dataclass(frozen=True)
class ClassCoding:
    """How class indexes (model output channels) become class raster values."""

    ids: tuple[int, ...]
    nodata: int

    @classmethod
    def of(cls, classes: Sequence[ClassLike], ignore_id: int) -> ClassCoding:
        """The coding for a model's classes (output channel ``i`` is ``classes[i]``)."""
        ids = tuple(int(c.id) for c in classes)
        return cls(ids=ids, nodata=class_nodata(ids, ignore_id))

    @property
    def dtype(self) -> str:
        """``uint8`` when every id and the nodata value fit in a byte, else ``uint16``."""
        return "uint8" if max(*self.ids, self.nodata) <= 255 else "uint16"

    def encode(self, index: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Class indexes ``(h, w)`` → class ids, nodata where not ``valid``."""
        lut = np.asarray(self.ids, dtype=self.dtype)
        out: np.ndarray = lut[index]
        out[~valid] = self.nodata
        return out


def confidence(top: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Highest class probability ``(h, w)`` → uint8 ``1..255``; 0 where not ``valid``."""
    out: np.ndarray = np.clip(np.rint(top * CONFIDENCE_SCALE), 1, CONFIDENCE_SCALE).astype(np.uint8)
    out[~valid] = CONFIDENCE_NODATA
    return out


def probabilities(prob: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Class probabilities ``(K, h, w)`` → uint8 ``0..254``; 255 where not ``valid``."""
    out: np.ndarray = np.clip(np.rint(prob * PROBABILITY_SCALE), 0, PROBABILITY_SCALE).astype(np.uint8)
    out[:, ~valid] = PROBABILITY_NODATA
    return out
