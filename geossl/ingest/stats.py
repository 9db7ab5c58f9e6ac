"""Per-band statistics over valid pixels, computed chunk by chunk on Dask and merged exactly.

For integer rasters of up to 16 bits the histogram is exact (one bin per value), so the percentiles are the
same as NumPy's ``percentile(..., method="inverted_cdf")`` over all valid pixels. Other types use a two-pass
histogram of :data:`FLOAT_BINS` bins between the global minimum and maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.delayed import delayed
from distributed import Client

from geossl.catalog import BandStats, Histogram
from geossl.io.valid import valid_pixels
from geossl.parallel import gather_progress

FLOAT_BINS = 4096
SUMMARY_BINS = 64


def _exact_offset(dtype: np.dtype) -> int | None:
    """Value offset for an exact bincount histogram, or None when the type is too wide for one."""
    if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
        return -int(np.iinfo(dtype).min)
    return None


def _chunk_moments(block: np.ndarray, nodata: float | None, mask: np.ndarray | None = None
                   ) -> dict[str, np.ndarray]:
    """Count, sums, min and max of each band over the chunk's valid pixels."""
    valid = valid_pixels(block, nodata, mask)
    vals = block[:, valid].astype(np.float64)
    n = vals.shape[1]
    return {
        "count": np.array(n, dtype=np.int64),
        "sum": vals.sum(axis=1), "sumsq": (vals * vals).sum(axis=1),
        "min": vals.min(axis=1) if n else np.full(block.shape[0], np.inf),
        "max": vals.max(axis=1) if n else np.full(block.shape[0], -np.inf),
    }


def _chunk_hist(block: np.ndarray, nodata: float | None, lo: np.ndarray, hi: np.ndarray,
                mask: np.ndarray | None = None) -> np.ndarray:
    """Histogram per band of FLOAT_BINS bins in [lo, hi] over valid pixels (types without exact histograms)."""
    valid = valid_pixels(block, nodata, mask)
    out = np.zeros((block.shape[0], FLOAT_BINS), dtype=np.int64)
    for i, b in enumerate(block):
        span = hi[i] - lo[i] if hi[i] > lo[i] else 1.0
        idx = np.clip(((b[valid] - lo[i]) / span * FLOAT_BINS).astype(np.int64), 0, FLOAT_BINS - 1)
        out[i] = np.bincount(idx, minlength=FLOAT_BINS)
    return out


def _chunk_exact(block: np.ndarray, nodata: float | None, mask: np.ndarray | None = None) -> np.ndarray:
    """Exact histogram per band (one bin per value, bin ``v + offset``) over valid pixels.

    Whole bands are counted without masking, then the few invalid pixels (masked, or some band at nodata) are
    counted again and subtracted: much faster than indexing the valid pixels out of every band.
    """
    offset = _exact_offset(block.dtype)
    assert offset is not None
    size = 1 << (8 * block.dtype.itemsize)
    unsigned = block.view(np.uint8 if block.dtype.itemsize == 1 else np.uint16)
    if offset:
        unsigned = unsigned ^ np.array(offset, dtype=unsigned.dtype)  # two's complement → offset binary
    hist = np.stack([np.bincount(b.ravel(), minlength=size) for b in unsigned])
    if mask is not None or (nodata is not None and not np.isnan(nodata)):
        invalid = ~valid_pixels(block, nodata, mask)
        if invalid.any():
            hist -= np.stack([np.bincount(b[invalid], minlength=size) for b in unsigned])
    return hist


def _percentile(hist: np.ndarray, edges_lo: float, width: float, q: float) -> float:
    """Value below which a fraction ``q`` of the histogram lies (inverted CDF, bin lower edge)."""
    total = hist.sum()
    if total == 0:
        return float("nan")
    rank = max(1, int(np.ceil(q * total)))
    idx = int(np.searchsorted(np.cumsum(hist), rank))
    return float(edges_lo + idx * width)


def _summarise(names: list[str], acc: dict[str, np.ndarray], exact_offset: int | None) -> list[BandStats]:
    out = []
    n = int(acc["count"])
    for i, name in enumerate(names):
        hist = acc["hist"][i]
        if exact_offset is not None:
            lo, width = float(-exact_offset), 1.0
        else:
            lo = float(acc["min"][i])
            width = (float(acc["max"][i]) - lo) / FLOAT_BINS if acc["max"][i] > acc["min"][i] else 1.0
        mean = acc["sum"][i] / n if n else float("nan")
        var = max(acc["sumsq"][i] / n - mean * mean, 0.0) if n else float("nan")
        # A short histogram for the catalog: SUMMARY_BINS bins between min and max.
        vmin, vmax = float(acc["min"][i]), float(acc["max"][i])
        centres = lo + (np.arange(hist.size) + 0.5 * (exact_offset is None)) * width
        edges = np.linspace(vmin, vmax if vmax > vmin else vmin + 1, SUMMARY_BINS + 1)
        counts, _ = np.histogram(centres, bins=edges, weights=hist)
        out.append(BandStats(
            name=name, count=n, mean=float(mean), std=float(np.sqrt(var)), min=vmin, max=vmax,
            p2=_percentile(hist, lo, width, 0.02), p98=_percentile(hist, lo, width, 0.98),
            histogram=Histogram(edges=[float(e) for e in edges], counts=[int(c) for c in counts]),
        ))
    return out


def _moments_from_exact(hist: np.ndarray, offset: int) -> dict[str, np.ndarray]:
    """Count, sums, min and max per band, computed from exact histograms (bin ``i`` is value ``i - offset``)."""
    values = np.arange(hist.shape[1], dtype=np.float64) - offset
    count = hist[0].sum()
    nonzero = [np.flatnonzero(h) for h in hist]
    return {
        "count": np.array(count, dtype=np.int64),
        "sum": hist @ values, "sumsq": hist @ (values * values),
        "min": np.array([values[nz[0]] if nz.size else np.inf for nz in nonzero]),
        "max": np.array([values[nz[-1]] if nz.size else -np.inf for nz in nonzero]),
        "hist": hist,
    }


def _merge(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The chunks' moments together, the same in any order (chunks arrive as they finish).

    The sums are exact until one final rounding (``math.fsum``), so they cannot depend on the order.
    """
    return {
        "count": np.array(sum(int(p["count"]) for p in parts), dtype=np.int64),
        "sum": np.array([math.fsum(v) for v in zip(*(p["sum"] for p in parts), strict=True)]),
        "sumsq": np.array([math.fsum(v) for v in zip(*(p["sumsq"] for p in parts), strict=True)]),
        "min": np.minimum.reduce([p["min"] for p in parts]),
        "max": np.maximum.reduce([p["max"] for p in parts]),
    }


def band_statistics(client: Client, arrays: list[da.Array], nodata: float | None, names: list[str],
                    quiet: bool = False, masks: Sequence[da.Array | None] | None = None) -> list[BandStats]:
    """Statistics per band over the valid pixels of all ``arrays`` (each ``(bands, rows, cols)``).

    ``masks``: each array's own mask (``(rows, cols)``, chunked alike; None for an array without one), as
    :func:`geossl.io.lazy.read_lazy_mask` reads it; the pixels it marks invalid are left out, as nodata's are.
    """
    dtype = arrays[0].dtype
    offset = _exact_offset(dtype)
    chunks = _chunks(arrays, masks if masks is not None else [None] * len(arrays))
    acc: dict[str, np.ndarray] | None = None
    if offset is not None:
        futures = client.compute([delayed(_chunk_exact)(blk, nodata, mask) for blk, mask in chunks])
        hist = None
        for _, part in gather_progress(futures, "band statistics", quiet):
            hist = part if hist is None else hist + part
        assert hist is not None
        acc = _moments_from_exact(hist, offset)
    else:
        futures = client.compute([delayed(_chunk_moments)(blk, nodata, mask) for blk, mask in chunks])
        acc = _merge([part for _, part in gather_progress(futures, "band range", quiet)])
        lo, hi = acc["min"], acc["max"]
        futures = client.compute([delayed(_chunk_hist)(blk, nodata, lo, hi, mask) for blk, mask in chunks])
        hist = None
        for _, part in gather_progress(futures, "band histograms", quiet):
            hist = part if hist is None else hist + part
        assert hist is not None
        acc["hist"] = hist
    assert acc is not None
    return _summarise(names, acc, offset)


def _chunks(arrays: list[da.Array], masks: Sequence[da.Array | None]) -> list[tuple[Any, Any]]:
    """The arrays' chunks (delayed), each with the same chunk of its array's mask (or None)."""
    out: list[tuple[Any, Any]] = []
    for arr, mask in zip(arrays, masks, strict=True):
        blocks = arr.to_delayed().ravel()
        if mask is None:
            out.extend((blk, None) for blk in blocks)
            continue
        if mask.chunks != arr.chunks[1:]:
            raise ValueError(f"mask chunks {mask.chunks} differ from the image's {arr.chunks[1:]}")
        out.extend(zip(blocks, mask.to_delayed().ravel(), strict=True))
    return out


def _chunk_counts(block: np.ndarray) -> np.ndarray:
    return np.bincount(block.ravel().astype(np.int64), minlength=1)


def value_counts(client: Client, array: da.Array, desc: str = "label values", quiet: bool = False
                 ) -> dict[int, int]:
    """Pixel count of every value of an integer raster (e.g. class ids of a label raster)."""
    if not np.issubdtype(array.dtype, np.integer) or array.dtype.itemsize > 2:
        raise TypeError(f"value_counts needs an integer raster of up to 16 bits, got {array.dtype}")
    if np.issubdtype(array.dtype, np.signedinteger):
        array = array.astype(np.int32) + 32768
        shift = -32768
    else:
        shift = 0
    total = np.zeros(1, dtype=np.int64)
    futures = client.compute([delayed(_chunk_counts)(blk) for blk in array.to_delayed().ravel()])
    for _, part in gather_progress(futures, desc, quiet):
        total = np.pad(total, (0, max(0, part.size - total.size)))
        total[: part.size] += part
    return {int(v) + shift: int(c) for v, c in enumerate(total) if c}
