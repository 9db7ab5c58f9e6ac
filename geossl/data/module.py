"""The training data: which regions are labeled, and the loaders Lightning asks for.

Training batches are dicts ``{"labeled": batch, "unlabeled": batch}`` (only ``labeled`` for strategies that
use no unlabeled data; the strategy's :class:`~geossl.data.spec.DataSpec` says, and whether unlabeled windows
come in overlapping pairs and carry the catalog's prior map: ``prior``, read from the same window with the same
symmetry as the image, never in labeled windows); validation and test batches are labeled patches on a grid.
In a distributed run each rank draws its own random windows and takes every ``world_size``-th grid window, so
Lightning's distributed sampler replacement is not needed (``use_distributed_sampler=False``).

The batch of global step ``s`` holds items ``s·B .. s·B + B − 1`` of its sampler (``B`` its batch size): every
epoch's loaders start at the trainer's global step, so a resumed run, even one resumed mid-epoch, gets the
batches an uninterrupted run got at the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from torch.utils.data import DataLoader

from geossl.catalog import CATALOG_NAME, Catalog
from geossl.data.normalize import IGNORE, LabelEncoder, Normalizer
from geossl.data.patches import PatchDataset, collate_patches
from geossl.data.rasters import catalog_rasters, with_labels, with_prior
from geossl.data.regions import (
    ClassPositions,
    Region,
    labeled_as,
    labeled_positions,
    reassign_labeled,
    region_class_counts,
    split_regions,
)
from geossl.data.samplers import RegionGridSampler, RegionSampler
from geossl.data.spec import DataSpec
from geossl.errors import InputError
from geossl.manifest import Split
from geossl.selection import LabeledSelection

log = logging.getLogger(__name__)


@dataclass
class SplitPlan:
    """The regions of each split after ``label_fraction``, and the labeled pixels per class of the labeled split."""

    regions: list[Region]
    labeled_counts: np.ndarray

    def of(self, split: Split) -> list[Region]:
        """The regions of one split."""
        return [r for r in self.regions if r.split == split]


def plan_splits(catalog: Catalog, root: Path, label_fraction: float | None, seed: int,
                selection: LabeledSelection = "random") -> SplitPlan:
    """Regions per split, after redrawing the labeled train regions when ``label_fraction`` is given.

    See :func:`geossl.data.regions.reassign_labeled`. Raises :class:`InputError` when the labeled split holds
    no labeled pixel.
    """
    regions = split_regions(catalog)
    label_paths = _label_paths(catalog, root)
    ids = [c.id for c in catalog.classes]
    wanted = [r for r in regions if r.split == Split.LABELED or (label_fraction is not None and r.is_train)]
    counts = region_class_counts(label_paths, wanted, ids)
    if label_fraction is not None:
        regions = reassign_labeled(regions, counts, label_fraction, seed, selection)
    return _counted_plan(catalog, root, regions, counts)


def with_labeled(catalog: Catalog, root: Path, labeled: set[str]) -> list[Region]:
    """The catalog's regions with exactly the train regions keyed ``labeled`` labeled (a model's record of them).

    Every other train region is unlabeled; validation and test are the catalog's. Raises :class:`InputError`
    naming the catalog when a key is not one of its train regions.
    """
    regions = split_regions(catalog)
    unknown = sorted(labeled - {r.key for r in regions if r.is_train})
    if unknown:
        raise InputError(root / CATALOG_NAME, f"has no train region {unknown[0]} (the model was trained on "
                                              "another split of it)")
    return labeled_as(regions, labeled)


def counted_plan(catalog: Catalog, root: Path, regions: list[Region]) -> SplitPlan:
    """The plan of ``regions`` as they are, with the labeled split's pixels per class counted."""
    labeled = [r for r in regions if r.split == Split.LABELED]
    counts = region_class_counts(_label_paths(catalog, root), labeled, [c.id for c in catalog.classes])
    return _counted_plan(catalog, root, regions, counts)


def _label_paths(catalog: Catalog, root: Path) -> list[Path]:
    """The catalog's label COGs; an :class:`InputError` when it has none."""
    label_paths = [catalog.path_of(root, s.labels) for s in catalog.scenes if s.labels]
    if not label_paths:
        raise InputError(root / CATALOG_NAME, "the catalog has no labels to train on")
    return label_paths


def _counted_plan(catalog: Catalog, root: Path, regions: list[Region], counts: dict[str, np.ndarray]) -> SplitPlan:
    """The plan of ``regions`` with its labeled split's class counts (from ``counts``, by region key)."""
    labeled = [r for r in regions if r.split == Split.LABELED]
    total = sum((counts[r.key] for r in labeled), np.zeros(len(catalog.classes), dtype=np.int64))
    if not labeled or total.sum() == 0:
        raise InputError(root / CATALOG_NAME, "the labeled split holds no labeled pixel (every label there is the "
                                              f"ignore id {catalog.ignore_id} or the split is empty)")
    log.info("labeled split: %d region(s), %d labeled pixels (%s)", len(labeled), int(total.sum()),
             ", ".join(f"{c.name} {int(n)}" for c, n in zip(catalog.classes, total, strict=True)))
    return SplitPlan(regions=regions, labeled_counts=total)


class SslDataModule(pl.LightningDataModule):
    """Labeled and unlabeled training patches, and grid patches of the validation split."""

    def __init__(self, catalog: Catalog, root: Path, plan: SplitPlan, spec: DataSpec, patch_size: int,
                 batch_size: int, unlabeled_batch_size: int, steps_per_epoch: int, seed: int = 0, workers: int = 0,
                 pseudo_truth: bool = True, labeled_sampling: str = "uniform") -> None:
        super().__init__()
        self.labeled_sampling = labeled_sampling
        self.catalog, self.root, self.plan, self.spec = catalog, root, plan, spec
        self.patch_size = patch_size
        self.batch_size, self.unlabeled_batch_size = batch_size, unlabeled_batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed, self.workers = seed, workers
        self.pseudo_truth = pseudo_truth
        self.normalizer = Normalizer.from_catalog(catalog)
        self.encoder = LabelEncoder(catalog.classes)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _global_step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def _sampler(self, dataset: PatchDataset, stream: str, batch: int,
                 pairs: tuple[float, float] | None = None, positions: ClassPositions | None = None
                 ) -> RegionSampler:
        """Random windows for batches of ``batch`` items, starting at the trainer's global step.

        With ``pairs``, pairs of windows sharing a share of their area drawn from that range.
        """
        rank, _ = self._rank()
        return RegionSampler(dataset.source, dataset.regions, self.patch_size, self.steps_per_epoch * batch,
                             seed=self.seed, pairs=pairs, stream=stream, rank=rank,
                             start=lambda: self._global_step() * batch, positions=positions)

    def _labeled_positions(self, regions: list[Region]) -> ClassPositions | None:
        """The labeled pixels of each class for ``class_balanced`` sampling (None for uniform windows)."""
        if self.labeled_sampling == "uniform":
            return None
        paths = [self.catalog.path_of(self.root, s.labels) for s in self.catalog.scenes if s.labels]
        return labeled_positions(paths, regions, [c.id for c in self.catalog.classes])

    def _loader(self, dataset: PatchDataset, sampler: RegionSampler | RegionGridSampler, batch: int,
                drop_last: bool) -> DataLoader[Any]:
        return DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate_patches,
                          num_workers=self.workers, drop_last=drop_last, persistent_workers=self.workers > 0)

    def train_dataloader(self) -> dict[str, DataLoader[Any]]:
        """``labeled`` (and ``unlabeled``) loaders of ``steps_per_epoch`` batches each."""
        images, labels = catalog_rasters(self.catalog, self.root)
        assert labels is not None
        labeled = PatchDataset(with_labels(images, labels), self.plan.of(Split.LABELED), self.patch_size,
                               self.normalizer, self.encoder, "mask")
        sampler = self._sampler(labeled, "windows/labeled", self.batch_size,
                                positions=self._labeled_positions(labeled.regions))
        loaders = {"labeled": self._loader(labeled, sampler, self.batch_size, drop_last=True)}
        if self.spec.unlabeled:
            regions = self.plan.of(Split.UNLABELED)
            if not regions:
                raise InputError("--label-fraction", "no unlabeled region is left for a semi-supervised strategy")
            truth = self.pseudo_truth and labels is not None
            source = with_labels(images, labels) if truth else images
            if self.spec.prior:
                source = with_prior(source, self.catalog, self.root)
            unlabeled = PatchDataset(source, regions, self.patch_size, self.normalizer, self.encoder, "truth")
            n = self.unlabeled_batch_size // (2 if self.spec.paired else 1)
            sampler = self._sampler(unlabeled, "windows/unlabeled", n, pairs=self.spec.overlap)
            loaders["unlabeled"] = self._loader(unlabeled, sampler, n, drop_last=True)
        return loaders

    def val_dataloader(self) -> DataLoader[Any]:
        """Grid patches over the validation regions."""
        rank, world = self._rank()
        return split_loader(self.catalog, self.root, self.plan.of(Split.VAL), self.patch_size, self.batch_size,
                            rank, world, self.workers)


#: The grid patches (side, batch) in which :func:`labeled_pixels` reads a split: a few MiB at a time.
PIXEL_PATCH, PIXEL_BATCH = 128, 16


def labeled_pixels(catalog: Catalog, root: Path, regions: list[Region],
                   normalizer: Normalizer | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The labeled pixels of ``regions``, a batch of :func:`split_loader` patches at a time.

    Yields bands ``(n, C)`` (normalised as :func:`split_loader` does) and class indices ``(n,)``; every labeled
    pixel of the regions once, in the grid's order.
    """
    for batch in split_loader(catalog, root, regions, PIXEL_PATCH, PIXEL_BATCH, normalizer=normalizer):
        image, mask = batch["image"], batch["mask"]
        keep = mask != IGNORE
        yield image.permute(0, 2, 3, 1)[keep].numpy(), mask[keep].numpy()


def split_loader(catalog: Catalog, root: Path, regions: list[Region], patch_size: int, batch_size: int,
                 rank: int = 0, world_size: int = 1, workers: int = 0,
                 normalizer: Normalizer | None = None) -> DataLoader[Any]:
    """Labeled grid patches over ``regions``: each pixel of the regions exactly once.

    See :class:`RegionGridSampler`. Bands are normalised with the catalog's statistics unless ``normalizer``
    is given (a model's, to compare the pixels with what the model reads).
    """
    images, labels = catalog_rasters(catalog, root)
    if labels is None:
        raise InputError(root / CATALOG_NAME, "the catalog has no labels to evaluate against")
    dataset = PatchDataset(with_labels(images, labels), regions, patch_size,
                           normalizer or Normalizer.from_catalog(catalog), LabelEncoder(catalog.classes), "mask")
    sampler = RegionGridSampler(dataset.source, regions, patch_size, rank, world_size)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate_patches,
                      num_workers=workers)
