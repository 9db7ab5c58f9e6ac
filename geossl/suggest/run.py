"""``geossl suggest``: where to label next, as ranked windows of the unlabeled area.

Flow: check the output, the checkpoint against the manifest and the catalog, the unlabeled split and the window
size → per scene, predict the part holding unlabeled area once and reduce it to cell sums (:mod:`.scan`) →
candidate windows inside the unlabeled area (:mod:`.candidates`) → the pool of the most uncertain → their
encoder features (``--diversity features``, :mod:`.features`) → greedy choice (:mod:`.select`, where the score
is defined) → GeoPackage and QGIS style (:mod:`.write`). Bad input stops before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
import torch
from shapely.geometry.base import BaseGeometry

from geossl.catalog import CATALOG_NAME, Catalog
from geossl.classweights import balanced_weights
from geossl.data.module import counted_plan
from geossl.data.regions import Region
from geossl.errors import InputError
from geossl.manifest import Split
from geossl.models import ModelBundle, Segmenter, load_bundle
from geossl.predict.runner import ModelRunner
from geossl.predict.scene import Scene, open_scenes
from geossl.suggest.candidates import (
    Candidates,
    Placement,
    place_windows,
    placed_windows,
    window_candidates,
)
from geossl.suggest.features import window_features
from geossl.suggest.novelty import ClassSpectra, labeled_spectra
from geossl.suggest.options import CELLS_PER_WINDOW, SuggestOptions
from geossl.suggest.scan import covering_area, scan
from geossl.suggest.select import Choice, choose, most_uncertain
from geossl.suggest.typical import choose_typical, subsample
from geossl.suggest.write import write_suggestions
from geossl.train.inputs import check_bundle, ensure_catalog, trained_regions, warn_unrecorded

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Suggestions:
    """What a run wrote: the GeoPackage, its style, the windows suggested and the candidates they came from."""

    path: Path
    style: Path
    windows: int
    candidates: int


def suggest(checkpoint: Path, manifest_path: Path, catalog_dir: Path, options: SuggestOptions) -> Suggestions:
    """Rank windows of the catalog's unlabeled area for labelling (module docstring); write ``options.out``."""
    out = _check_out(options)
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    bundle, model = load_bundle(checkpoint)
    manifest, catalog, root = ensure_catalog(manifest_path, catalog_dir, options.data_root, options.quiet)
    check_bundle(bundle, checkpoint, manifest_path, manifest, catalog)
    regions = trained_regions(bundle, checkpoint, catalog, root)
    inside, outside = split_areas(regions, root)
    scenes = open_scenes([catalog.path_of(root, s.image) for s in catalog.scenes], bundle)
    _check_size(scenes, options.size)
    placements = _placements(scenes, bundle, inside, outside, options.size)
    candidates = _candidates(catalog, root, regions, scenes, bundle, model, placements, options)
    if len(candidates) == 0:
        raise InputError("--size", f"every window of {options.size} x {options.size} px inside the unlabeled area "
                                   "holds nodata; try a smaller --size")
    pool, chosen = _choose(regions, scenes, bundle, model, candidates, options)
    warn_unrecorded(bundle, checkpoint)
    if len(chosen) < options.n:
        log.warning("only %d windows of %d px fit in the unlabeled area without overlapping; %d asked for",
                    len(chosen), options.size, options.n)
    picked = pool.take(np.array([c.index for c in chosen]))
    style = write_suggestions(out, picked, np.array([c.score for c in chosen]), bundle.classes,
                              [s.id for s in catalog.scenes], catalog.crs, manifest.class_field)
    how = ("typical windows" if options.ranking == "typical" else
           f"{options.method}, diversity {options.kept_apart}, class weighting {options.class_weighting}")
    log.info("%d suggestions of %d x %d px (from %d candidates, %s) -> %s", len(chosen), options.size,
             options.size, len(candidates), how, out)
    return Suggestions(path=out, style=style, windows=len(chosen), candidates=len(candidates))


def _choose(regions: list[Region], scenes: list[Scene], bundle: ModelBundle, model: Segmenter,
            candidates: Candidates, options: SuggestOptions) -> tuple[Candidates, list[Choice]]:
    """The candidates the suggestions are chosen from, and the choices (indices into them) by ``--ranking``."""
    if options.ranking == "typical":
        pool = candidates.take(subsample(len(candidates)))
        features = window_features(model, bundle, scenes, pool, options.size, options.batch_size)
        labeled = window_features(model, bundle, scenes, labeled_windows(regions, scenes, bundle, options.size),
                                  options.size, options.batch_size)
        return pool, choose_typical(pool, features, labeled, options.n, options.size)
    pool = candidates.take(most_uncertain(candidates, options.n, options.size))
    diverse = None
    if options.kept_apart == "features":
        diverse = window_features(model, bundle, scenes, pool, options.size, options.batch_size)
    return pool, choose(pool, options.n, options.size, options.kept_apart, diverse)


def labeled_windows(regions: list[Region], scenes: list[Scene], bundle: ModelBundle, size: int) -> Candidates:
    """The windows half a window apart that lie wholly inside the labeled regions (none when none fit).

    Half-window steps, not the candidates' finer ones: TypiClust counts the labeled windows (``K = L + n``), and
    the shifted copies of one labeled place must not count as more labels.
    """
    labeled = shapely.union_all([r.geometry for r in regions if r.split == Split.LABELED])
    placements = placements_in(scenes, bundle, labeled, None, size, step=CELLS_PER_WINDOW // 2)
    return Candidates.concat([placed_windows(p, scenes[p.scene], size, len(bundle.classes)) for p in placements],
                             len(bundle.classes))


def _check_out(options: SuggestOptions) -> Path:
    """The output path, refused before any work when it cannot be written as asked."""
    out = options.out.absolute()
    if out.suffix.lower() != ".gpkg":
        raise InputError(options.out, "suggestions are written as a GeoPackage: the name must end in .gpkg")
    if out.is_dir():
        raise InputError(options.out, "is a folder")
    for target in (out, out.with_suffix(".qml")):
        if target.exists() and not options.overwrite:
            raise InputError(target, "already exists; use --overwrite to replace it")
    return out


def split_areas(regions: list[Region], root: Path) -> tuple[BaseGeometry, BaseGeometry | None]:
    """The unlabeled area (suggestions are drawn from it), and the other splits' areas together (None if none).

    ``regions`` are the splits as the model was trained on them (:func:`geossl.train.inputs.trained_regions`).
    """
    unlabeled = [r.geometry for r in regions if r.split == Split.UNLABELED]
    if not unlabeled:
        raise InputError(root / CATALOG_NAME, "the catalog has no unlabeled split: there is nothing to suggest "
                                              "labels for")
    others = [r.geometry for r in regions if r.split != Split.UNLABELED]
    return shapely.union_all(unlabeled), shapely.union_all(others) if others else None


def _check_size(scenes: list[Scene], size: int) -> None:
    """A window must fit in at least one scene."""
    if not any(size <= min(s.width, s.height) for s in scenes):
        largest = max(scenes, key=lambda s: min(s.width, s.height))
        raise InputError("--size", f"a window of {size} px is larger than the scene {largest.path.name} "
                                   f"({largest.width} x {largest.height} px)")


def placements_in(scenes: list[Scene], bundle: ModelBundle, inside: BaseGeometry, outside: BaseGeometry | None,
                  size: int, step: int = 1) -> list[Placement]:
    """Per scene holding some, the windows every ``step`` cells that ``inside`` covers (none when none fit)."""
    placements = []
    for index, scene in enumerate(scenes):
        here = inside.intersection(shapely.box(*scene.grid.bounds))
        area = None if here.is_empty else covering_area(scene, here.bounds, max(size, bundle.patch_size))
        if area is None or size > min(scene.width, scene.height):
            continue
        placed = place_windows(scene, index, area, size, here, outside, step)
        if len(placed):
            placements.append(placed)
    return placements


def _placements(scenes: list[Scene], bundle: ModelBundle, inside: BaseGeometry, outside: BaseGeometry | None,
                size: int) -> list[Placement]:
    """Per scene holding some, the windows inside the unlabeled area; an error when there are none at all."""
    placements = placements_in(scenes, bundle, inside, outside, size)
    if not placements:
        raise InputError("--size", f"no window of {size} x {size} px fits inside the unlabeled area; try a "
                                   "smaller --size")
    return placements


def _candidates(catalog: Catalog, root: Path, regions: list[Region], scenes: list[Scene], bundle: ModelBundle,
                model: torch.nn.Module, placements: list[Placement], options: SuggestOptions) -> Candidates:
    """The placed windows without nodata, with their uncertainty, class mix and priority (a model pass a scene)."""
    runner = ModelRunner(model, "auto", options.tta)
    weights, spectra = _from_labels(catalog, root, regions, bundle, options)
    parts = []
    for placed in placements:
        scene, area = scenes[placed.scene], placed.area
        log.info("%s: predicting %d x %d px holding unlabeled area", scene.path.name, area.width, area.height)
        stats = scan(scene, bundle, runner, area, options.size // CELLS_PER_WINDOW, options.scored_by,
                     options.batch_size, spectra)
        parts.append(window_candidates(stats, placed, scene, options.size, weights))
    return Candidates.concat(parts, len(bundle.classes))


def _from_labels(catalog: Catalog, root: Path, regions: list[Region], bundle: ModelBundle,
                 options: SuggestOptions) -> tuple[np.ndarray, ClassSpectra | None]:
    """What the ranking takes from the labeled regions: the class weights, and the spectra novelty measures against.

    Uniform weights and no spectra unless ``--class-weighting balanced`` or ``--method novelty`` asks for them.
    """
    weights = np.ones(len(bundle.classes))
    if options.class_weighting != "balanced" and options.scored_by != "novelty":
        return weights, None
    try:
        plan = counted_plan(catalog, root, regions)
    except InputError as error:
        uses = ("--method novelty measures against the labeled pixels" if options.scored_by == "novelty"
                else "--class-weighting balanced weighs by the labeled pixels")
        raise InputError(error.where, f"{error.problem}; {uses}") from error
    if options.class_weighting == "balanced":
        weights = balanced_weights(plan.labeled_counts)
        log.info("class weights: %s", ", ".join(f"{c.name} {w:.2f}" for c, w in zip(bundle.classes, weights,
                                                                                  strict=True)))
    spectra = labeled_spectra(catalog, root, plan.of(Split.LABELED), bundle) if options.scored_by == "novelty" else None
    return weights, spectra
