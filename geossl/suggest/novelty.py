"""Novelty for the predicted class: how unlike a pixel is to the labeled pixels of the class the model gives it.

A model can be wrong and sure of it: a kind of ground the labels never showed (on Zion, a reservoir darker than
every labeled water pixel) is given the class it resembles most in context, with a confidence of 0.9 and more,
so uncertainty never ranks it. ``--method novelty`` asks another question of each pixel: does it look like the
labeled examples of the class the model predicts for it? Its score is its distance ``d``, in the model's
normalised bands, to the nearest labeled pixel of that class, mapped to [0, 1) as

    novelty = d / (d + s)

where ``s`` is how far apart the labeled classes are: the median, over the labeled pixels, of the distance to
the nearest labeled pixel of another class. A pixel as far from its predicted class as the classes are from each
other scores 0.5; one that sits among that class's labeled pixels, 0. A predicted class with no labeled pixel
is measured against every labeled pixel. The labeled pixels are a seeded uniform sample of at most
:data:`MAX_PER_CLASS` a class (read once, in bounded memory), held in a k-d tree a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from geossl.catalog import Catalog
from geossl.data.module import labeled_pixels
from geossl.data.regions import Region
from geossl.models import ModelBundle

#: Labeled pixels kept a class (a seeded uniform sample).
MAX_PER_CLASS = 20_000
#: Labeled pixels a class whose distances to the other classes give ``s``.
SCALE_SAMPLE = 2_000


@dataclass(frozen=True)
class ClassSpectra:
    """The labeled pixels' bands, a k-d tree per class (None: no labeled pixel) and one over all of them."""

    trees: list[cKDTree | None]
    every: cKDTree
    scale: float

    def novelty(self, bands: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """``(C, h, w)`` normalised bands and ``(h, w)`` class indices → ``(h, w)`` float32 novelty in [0, 1)."""
        points = bands.reshape(len(bands), -1).T
        classes = predicted.ravel()
        distance = np.zeros(len(points))
        for k in np.unique(classes):
            at = classes == k
            tree = self.trees[k] if k < len(self.trees) and self.trees[k] is not None else self.every
            distance[at] = tree.query(points[at], k=1)[0]
        return np.asarray((distance / (distance + self.scale)).reshape(predicted.shape), dtype=np.float32)


def class_spectra(pixels: np.ndarray, labels: np.ndarray, classes: int) -> ClassSpectra:
    """``(N, C)`` labeled pixels and their ``(N,)`` class indices (at least one pixel) → :class:`ClassSpectra`."""
    trees = [cKDTree(pixels[labels == k]) if (labels == k).any() else None for k in range(classes)]
    return ClassSpectra(trees=trees, every=cKDTree(pixels), scale=_scale(pixels, labels, trees))


def _scale(pixels: np.ndarray, labels: np.ndarray, trees: list[cKDTree | None]) -> float:
    """``s``: the median distance of a labeled pixel to the nearest labeled pixel of another class.

    With one class labeled, the median distance to the nearest other pixel of the class instead; never 0.
    """
    present = [k for k, tree in enumerate(trees) if tree is not None]
    rng = np.random.default_rng(0)
    nearest = []
    for k in present:
        own = pixels[labels == k]
        own = own[rng.permutation(len(own))[:SCALE_SAMPLE]]
        others = [trees[j].query(own, k=1)[0] for j in present if j != k]  # type: ignore[union-attr]
        if others:
            nearest.append(np.min(others, axis=0))
        elif len(own) > 1:
            nearest.append(trees[k].query(own, k=2)[0][:, 1])  # type: ignore[union-attr]
    scale = float(np.median(np.concatenate(nearest))) if nearest else 0.0
    return max(scale, 1e-6)


def labeled_spectra(catalog: Catalog, root: Path, regions: list[Region], bundle: ModelBundle,
                    seed: int = 0) -> ClassSpectra:
    """The labeled pixels of ``regions``, normalised as ``bundle``'s model reads them (a sample, module docstring)."""
    classes = len(bundle.classes)
    sample = _Sample(classes, MAX_PER_CLASS, seed)
    for pixels, labels in labeled_pixels(catalog, root, regions, bundle.normalizer):
        sample.add(pixels, labels)
    pixels, labels = sample.result()
    return class_spectra(pixels, labels, classes)


class _Sample:
    """A seeded uniform sample of at most ``cap`` pixels a class, in bounded memory.

    Each pixel draws a random key; a class keeps the pixels with its ``cap`` smallest keys seen so far.
    """

    def __init__(self, classes: int, cap: int, seed: int) -> None:
        self.cap, self.rng = cap, np.random.default_rng(seed)
        self.kept: list[tuple[np.ndarray, np.ndarray]] = [(np.zeros((0, 0), np.float32), np.zeros(0))] * classes

    def add(self, pixels: np.ndarray, labels: np.ndarray) -> None:
        """Offer ``(n, C)`` pixels with their ``(n,)`` class indices."""
        keys = self.rng.random(len(labels))
        for k in np.unique(labels):
            old_pixels, old_keys = self.kept[k]
            at = labels == k
            both = np.concatenate([old_pixels.reshape(-1, pixels.shape[1]), pixels[at]])
            both_keys = np.concatenate([old_keys, keys[at]])
            if len(both_keys) > self.cap:
                best = np.argpartition(both_keys, self.cap - 1)[: self.cap]
                both, both_keys = both[best], both_keys[best]
            self.kept[k] = (both, both_keys)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(N, C)`` pixels and ``(N,)`` class indices kept."""
        parts = [(p, np.full(len(p), k)) for k, (p, _) in enumerate(self.kept) if len(p)]
        return np.concatenate([p for p, _ in parts]), np.concatenate([y for _, y in parts])
