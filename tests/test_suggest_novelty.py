"""``--method novelty``: distance to the labeled pixels of the predicted class, and the suggestions it makes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.features
import shapely

from geossl.catalog import load_catalog
from geossl.data.regions import split_regions
from geossl.predict.reader import RowBand
from geossl.suggest.novelty import _Sample, class_spectra
from geossl.suggest.options import SuggestSettings
from geossl.suggest.scan import KeptBands
from tests.conftest import ROOT, run_cli
from tests.test_suggest import model  # noqa: F401  (the module's tiny model fixture)

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
SIZE = 32


def _two_classes() -> tuple[np.ndarray, np.ndarray]:
    """Class 0 on a 3 x 3 grid around (0, 0), class 1 on the same grid around (10, 0) (two bands)."""
    grid = np.array([(x, y) for x in (-1.0, 0.0, 1.0) for y in (-1.0, 0.0, 1.0)])
    return np.concatenate([grid, grid + (10.0, 0.0)]), np.repeat([0, 1], len(grid))


def test_scale_is_the_median_distance_to_the_nearest_pixel_of_another_class():
    pixels, labels = _two_classes()
    spectra = class_spectra(pixels, labels, 3)
    # Each column of the grid: the facing columns are 8 apart, the middle ones 9, the far ones 10.
    assert spectra.scale == 9.0
    assert spectra.trees[2] is None


def test_novelty_grows_with_the_distance_to_the_predicted_class_and_is_zero_on_its_pixels():
    pixels, labels = _two_classes()
    spectra = class_spectra(pixels, labels, 3)
    bands = np.array([[0.0, 1.0, 4.0, 10.0], [0.0, 0.0, 0.0, 0.0]])[:, None, :]  # (C, 1, 4)
    as_class_0 = spectra.novelty(bands, np.zeros((1, 4), dtype=int))[0]
    assert as_class_0[0] == 0 and as_class_0[1] == 0  # labeled pixels of class 0
    assert as_class_0[2] == np.float32(3 / (3 + 9))  # 3 from (1, 0)
    assert as_class_0[3] == np.float32(9 / (9 + 9))  # among class 1: as far as the classes are apart
    as_class_1 = spectra.novelty(bands, np.ones((1, 4), dtype=int))[0]
    assert as_class_1[3] == 0 and np.all(np.diff(as_class_1[::-1]) >= 0)
    assert np.all((as_class_0 >= 0) & (as_class_0 < 1))


def test_a_class_without_labeled_pixels_is_measured_against_every_labeled_pixel():
    pixels, labels = _two_classes()
    spectra = class_spectra(pixels, labels, 3)
    bands = np.array([[5.0], [0.0]])[:, None, :]
    assert spectra.novelty(bands, np.full((1, 1), 2))[0, 0] == np.float32(4 / (4 + 9))


def test_kept_bands_give_a_finished_block_its_rows_across_overlapping_bands_and_release_them():
    scene = np.arange(2 * 40 * 5, dtype=np.float32).reshape(2, 40, 5)  # bands, rows, columns
    bands = KeptBands()
    for row0 in (0, 12, 24):  # windows of 16 rows, 4 overlapping
        data = scene[:, row0 : row0 + 16]
        bands.keep(RowBand(row0=row0, col0=0, data=data, valid=np.ones(data.shape[1:], bool)))
    np.testing.assert_array_equal(bands.rows(10, 9), scene[:, 10:19])  # across the first two bands
    bands.release(16)  # rows up to 16 finished: the first band goes
    np.testing.assert_array_equal(bands.rows(16, 24), scene[:, 16:40])
    with pytest.raises(ValueError, match="rows 8-20"):
        bands.rows(8, 12)


def test_the_sample_keeps_at_most_cap_pixels_a_class_all_offered_and_is_seeded():
    def draw(seed: int) -> tuple[np.ndarray, np.ndarray]:
        sample = _Sample(3, 50, seed)
        for start in range(0, 1000, 100):  # class 0 offered 1000 pixels in batches, class 2 only 10
            ids = np.arange(start, start + 100, dtype=np.float32)
            sample.add(np.stack([ids, -ids], axis=1), np.where(ids < 10, 2, 0))
        return sample.result()

    pixels, labels = draw(0)
    assert np.bincount(labels, minlength=3).tolist() == [50, 0, 10]
    assert np.all(pixels[:, 1] == -pixels[:, 0]) and len(np.unique(pixels[:, 0])) == 60
    assert set(pixels[labels == 2, 0]) == set(range(10))
    again, other = draw(0), draw(1)
    assert np.array_equal(again[0], pixels) and not np.array_equal(other[0], pixels)
    assert pixels[labels == 0, 0].max() > 500  # the sample reaches the last batches, not only the first


def _unlabeled_patch(catalog: Path, side: int) -> tuple[int, int]:
    """The top-left pixel of a ``side``-px square in the unlabeled area, away from every other split."""
    cat = load_catalog(catalog)
    regions = split_regions(cat)
    with rasterio.open(catalog / cat.scenes[0].image) as src:
        shape, transform = (src.height, src.width), src.transform
    inside = rasterio.features.geometry_mask([r.geometry for r in regions if r.split == "unlabeled"], shape,
                                             transform, invert=True)
    outside = rasterio.features.geometry_mask([r.geometry for r in regions if r.split != "unlabeled"], shape,
                                              transform, invert=True)
    free = inside & ~outside
    margin = SIZE
    for r in range(margin, shape[0] - side - margin, 8):
        for c in range(margin, shape[1] - side - margin, 8):
            if free[r - margin : r + side + margin, c - margin : c + side + margin].all():
                return r, c
    raise AssertionError("no free square in the synthetic scene's unlabeled area")


def test_novelty_is_the_default_and_keeps_windows_apart_only_by_overlap_unless_told():
    assert SuggestSettings().method == "novelty" and SuggestSettings().kept_apart == "none"
    assert SuggestSettings(method="entropy").kept_apart == "features"
    assert SuggestSettings(method="margin").kept_apart == "features"
    assert SuggestSettings(diversity="classes").kept_apart == "classes"
    assert SuggestSettings(method="entropy", diversity="none").kept_apart == "none"


def test_a_patch_unlike_every_labeled_pixel_is_suggested_first(model, synth_catalog, tmp_path):  # noqa: F811
    """Ground the labels never showed: bright squares of every band planted in the unlabeled area (defaults)."""
    catalog = tmp_path / "catalog"
    shutil.copytree(synth_catalog, catalog)
    r, c = _unlabeled_patch(catalog, SIZE)
    image = catalog / load_catalog(catalog).scenes[0].image
    with rasterio.open(image, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        data = dst.read()
        data[:, r : r + SIZE, c : c + SIZE] = data.max(axis=(1, 2), keepdims=True)
        dst.write(data)
    out = tmp_path / "novel.gpkg"
    result = run_cli("suggest", model, MANIFEST, "--catalog", catalog, "--out", out, "--size", SIZE, "--n", 3,
                     "--threads", 1)
    assert result.exit_code == 0, result.output
    frame = pyogrio.read_dataframe(out, layer=out.stem)
    assert frame["score"].is_monotonic_decreasing and (frame["uncertainty"] < 1).all()
    with rasterio.open(image) as src:
        x0, y1 = src.transform @ (c, r)
        x1, y0 = src.transform @ (c + SIZE, r + SIZE)
    patch = shapely.box(x0, y0, x1, y1)
    covered = shapely.area(shapely.intersection(frame.geometry.to_numpy(), patch)) / patch.area
    # Candidates step by an eighth of a window from the unlabeled area's corner: the best one is at most a step off.
    assert covered[0] >= (1 - 1 / 8) ** 2, covered
    assert np.all(covered[1:] < covered[0])
