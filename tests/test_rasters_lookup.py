"""The catalog datasets' cached index lookup reads what torchgeo's own lookup reads: same files, same pixels.

Image samples say besides which pixels the files cover (``valid``).
"""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from torchgeo.datasets import RasterDataset

from geossl.catalog import load_catalog
from geossl.data.rasters import ImageRasters, LabelRasters, catalog_rasters

RES = 30.0


def _tile(path: Path, left: float, top: float, width: int, height: int, value: int) -> str:
    """A one-band uint16 GeoTIFF of ``value`` + a ramp (so overlapping tiles differ) on a 30 m UTM grid."""
    ramp = np.arange(width * height, dtype=np.uint16).reshape(height, width) % 97
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="uint16",
                       crs="EPSG:32612", transform=from_origin(left, top, RES, RES), nodata=0) as dst:
        dst.write((ramp + value)[None])
    return str(path)


def _same_sample(ds: RasterDataset, query: tuple[slice, slice], covered: torch.Tensor | None = None) -> None:
    """``ds[query]`` equals torchgeo's ``RasterDataset.__getitem__`` (or both raise IndexError).

    An image sample's ``valid`` is ``covered`` (by default: the pixels torchgeo's merge did not fill with 0).
    """
    try:
        expected = RasterDataset.__getitem__(ds, query)
    except IndexError:
        with pytest.raises(IndexError):
            ds[query]
        return
    got = ds[query]
    extra = {"valid"} if ds.is_image else set()  # the pixels a file covers (and its own mask keeps)
    assert got.keys() == expected.keys() | extra
    assert got["bounds"] == expected["bounds"] and got["crs"] == expected["crs"]
    key = "image" if ds.is_image else "mask"
    assert got[key].dtype == expected[key].dtype and torch.equal(got[key], expected[key])
    if ds.is_image:
        assert torch.equal(got["valid"], expected["image"][0] != 0 if covered is None else covered)


def test_overlapping_tiles_touching_and_missed_queries(tmp_path: Path) -> None:
    # three tiles: two overlapping (merge paints the first one listed in the index over the second), one apart
    paths = [_tile(tmp_path / "a.tif", 500_000, 4_000_000, 40, 30, 100),
             _tile(tmp_path / "b.tif", 500_000 + 25 * RES, 4_000_000 - 10 * RES, 40, 40, 1000),
             _tile(tmp_path / "c.tif", 500_000 + 100 * RES, 4_000_000, 20, 20, 5000)]
    images = ImageRasters(paths=paths, res=(RES, RES), cache=True)
    labels = LabelRasters(paths=paths, crs=images.crs, res=images.res, cache=True)
    rng = np.random.default_rng(0)
    x0, y1 = 500_000 - 10 * RES, 4_000_000 + 10 * RES
    queries = []
    for _ in range(60):  # windows of 8-24 px anywhere around the tiles, on the grid
        c, r, n = rng.integers(0, 130), rng.integers(0, 70), rng.integers(8, 25)
        xmin, ymax = x0 + c * RES, y1 - r * RES
        queries.append((slice(xmin, xmin + n * RES), slice(ymax - n * RES, ymax)))
    # a window whose right edge touches tile a's left edge exactly, and one in the gap between b and c
    queries.append((slice(500_000 - 8 * RES, 500_000), slice(4_000_000 - 8 * RES, 4_000_000)))
    queries.append((slice(500_000 + 70 * RES, 500_000 + 78 * RES), slice(4_000_000 - 8 * RES, 4_000_000)))
    across = (slice(500_000 + 20 * RES, 500_000 + 36 * RES), slice(4_000_000 - 21 * RES, 4_000_000 - 5 * RES))
    queries.append(across)  # over the overlap of a and b
    for query in queries:  # every tile pixel is > 0: merge's 0 fill marks the pixels no tile covers
        _same_sample(images, query)
        _same_sample(labels, query)
    assert images._files_in(*across, images.bounds[2]) == paths[:2]


def test_catalog_windows_read_as_torchgeo_reads_them(synth_catalog: Path) -> None:
    images, labels = catalog_rasters(load_catalog(synth_catalog), synth_catalog)
    assert labels is not None
    x, y, _ = images.bounds
    xres, yres = images.res
    rng = np.random.default_rng(1)
    for _ in range(20):
        xmin = x.start + int(rng.integers(-20, 200)) * xres
        ymax = y.stop - int(rng.integers(-20, 200)) * yres
        query = (slice(xmin, xmin + 64 * xres), slice(ymax - 64 * yres, ymax))
        cols = xmin + (np.arange(64) + 0.5) * xres
        rows = ymax - (np.arange(64) + 0.5) * yres
        inside = ((rows > y.start) & (rows < y.stop))[:, None] & ((cols > x.start) & (cols < x.stop))[None]
        _same_sample(images, query, torch.from_numpy(inside))  # the scene's nodata is the normaliser's to mark
        _same_sample(labels, query)
