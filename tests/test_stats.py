import dask.array as da
import numpy as np
import pytest

from geossl.ingest.stats import _chunk_moments, _merge, band_statistics, value_counts
from geossl.parallel import dask_client


@pytest.fixture(scope="module")
def client():
    with dask_client(workers=2) as c:
        yield c


@pytest.mark.parametrize("dtype", ["uint8", "int16", "uint16", "float32"])
def test_band_statistics_ignore_nodata_and_match_numpy(client, dtype):
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.issubdtype(np.dtype(dtype), np.integer) else None
    lo, hi = (info.min + 1, info.max) if info else (-50.0, 50.0)
    data = rng.uniform(lo, hi, size=(3, 200, 150)).astype(dtype)
    nodata = info.min if info else -9999.0
    data[:, :10, :] = nodata  # a nodata border
    data[1, 50, 50] = nodata  # one band nodata: the whole pixel is invalid
    arr = da.from_array(data, chunks=(3, 64, 64))
    stats = band_statistics(client, [arr], float(nodata), ["a", "b", "c"], quiet=True)
    valid = (data != nodata).all(axis=0)
    for band, st in zip(data, stats, strict=True):
        vals = band[valid].astype(np.float64)
        assert st.count == valid.sum() == 200 * 150 - 10 * 150 - 1
        assert st.mean == pytest.approx(vals.mean(), rel=1e-9)
        assert st.std == pytest.approx(vals.std(), rel=1e-6)
        assert st.min == vals.min() and st.max == vals.max()
        if info:  # exact histograms: exact percentiles
            assert st.p2 == np.percentile(vals, 2, method="inverted_cdf")
            assert st.p98 == np.percentile(vals, 98, method="inverted_cdf")
        else:  # 4096 bins between min and max
            width = (vals.max() - vals.min()) / 4096
            assert abs(st.p2 - np.percentile(vals, 2)) <= 2 * width
            assert abs(st.p98 - np.percentile(vals, 98)) <= 2 * width


def test_statistics_over_several_scenes_pool_the_pixels(client):
    a = np.full((1, 10, 10), 2, dtype="uint16")
    b = np.full((1, 10, 30), 6, dtype="uint16")
    stats = band_statistics(client, [da.from_array(a, chunks=5), da.from_array(b, chunks=5)], None, ["x"], True)
    assert stats[0].count == 400 and stats[0].mean == 5.0 and stats[0].min == 2 and stats[0].max == 6
    assert stats[0].std == pytest.approx(np.sqrt((100 * 9 + 300 * 1) / 400))


def test_float_moments_do_not_depend_on_which_chunk_finishes_first():
    """Chunks come back in the order they finish; float sums added in that order would vary between runs."""
    rng = np.random.default_rng(1)
    chunks = [np.full((2, 8, 8), v) for v in (1e15, 0.1, -1e15)] + [rng.uniform(-1, 1, size=(2, 8, 8)),
                                                                   rng.uniform(-1e9, 1e9, size=(2, 8, 8))]
    parts = [_chunk_moments(c, None) for c in chunks]
    orders = [parts, parts[::-1], parts[1:] + parts[:1], [parts[i] for i in (3, 0, 4, 2, 1)]]
    naive = {float(sum(p["sum"][0] for p in order)) for order in orders}
    assert len(naive) > 1  # the data make plain float addition order-dependent
    merged = [_merge(order) for order in orders]
    for m in merged[1:]:
        for key in ("count", "sum", "sumsq", "min", "max"):
            np.testing.assert_array_equal(m[key], merged[0][key], err_msg=key)


def test_value_counts(client):
    labels = np.array([[0, 1, 1], [2, 2, 2], [7, 0, 1]], dtype="uint8")[None]
    assert value_counts(client, da.from_array(labels, chunks=(1, 2, 2)), quiet=True) == {0: 2, 1: 3, 2: 3, 7: 1}
