"""Quicklook PNGs for the report: RGB composite, class map with legend, confidence, suggestions, plots.

Rasters are read decimated (GDAL picks the COG overviews), so a quicklook of any scene size costs a
bounded read.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402

from geossl.io.style import ClassLike  # noqa: E402
from geossl.io.valid import read_valid  # noqa: E402


def _decimated(path: Path, size: int, bands: Sequence[int], resampling: Resampling) -> tuple[np.ndarray, np.ndarray]:
    """The bands read at most ``size`` pixels a side, and their valid pixels (mask, nodata: geossl.io.valid)."""
    with rasterio.open(path) as src:
        scale = max(1.0, max(src.width, src.height) / size)
        shape = (len(bands), max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        data = src.read(list(bands), out_shape=shape, resampling=resampling)
        return data, read_valid(src, data, src.nodata, out_shape=shape[1:])


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def rgb_quicklook(image: Path, band_names: list[str], size: int = 1024) -> bytes:
    """True-colour composite (red, green, blue bands when named so, else the first three), 2-98% stretch."""
    rgba, _ = _rgb(image, band_names, size)
    fig, ax = plt.subplots(figsize=(6, 6 * rgba.shape[0] / rgba.shape[1]))
    ax.imshow(rgba)
    ax.set_axis_off()
    ax.set_title("RGB composite")
    return _png(fig)


def _rgb(image: Path, band_names: list[str], size: int) -> tuple[np.ndarray, float]:
    """The stretched composite as RGBA ``(h, w, 4)`` (nodata transparent) and the decimation factor."""
    names = [n.lower() for n in band_names]
    if all(n in names for n in ("red", "green", "blue")):
        bands = [names.index(n) + 1 for n in ("red", "green", "blue")]
    else:
        bands = [min(i, len(names)) for i in (1, 2, 3)]
    data, valid = _decimated(image, size, bands, Resampling.average)
    x = data.astype(np.float64)
    out = np.zeros((*x.shape[1:], 4))
    for i in range(3):
        lo, hi = np.percentile(x[i][valid], [2, 98]) if valid.any() else (0.0, 1.0)
        out[..., i] = np.clip((x[i] - lo) / max(hi - lo, 1e-9), 0, 1)
    out[..., 3] = valid
    with rasterio.open(image) as src:
        return out, src.width / out.shape[1]


def suggestions_quicklook(image: Path, band_names: list[str], windows: Sequence[tuple[int, int, int, int]],
                          size: int = 1024) -> bytes:
    """The RGB composite with suggested windows ``(rank, row, col, side in pixels)`` outlined and numbered."""
    from matplotlib.patches import Rectangle

    from geossl.io.style import rank_color

    rgba, scale = _rgb(image, band_names, size)
    fig, ax = plt.subplots(figsize=(6, 6 * rgba.shape[0] / rgba.shape[1]))
    ax.imshow(rgba)
    n = max((w[0] for w in windows), default=1)
    for rank, row, col, side in sorted(windows, reverse=True):  # the first on top
        color = rank_color(rank, n)
        ax.add_patch(Rectangle((col / scale - 0.5, row / scale - 0.5), side / scale, side / scale, fill=False,
                               edgecolor=color, linewidth=1.5))
        ax.annotate(str(rank), (col / scale, row / scale), color="white", fontsize=7, fontweight="bold",
                    ha="left", va="bottom", bbox={"boxstyle": "square,pad=0.1", "fc": color, "ec": "none"})
    ax.set_axis_off()
    ax.set_title("Where to label next (1 = first)")
    return _png(fig)


def class_quicklook(classes: Sequence[ClassLike], class_raster: Path, size: int = 1024, title: str = "Class map"
                    ) -> bytes:
    """Class map in the class palette, with a legend."""
    data, valid = _decimated(class_raster, size, [1], Resampling.nearest)
    lut = np.zeros((int(max(data.max(), max(c.id for c in classes))) + 1, 4))
    for c in classes:
        lut[c.id] = [int(c.color[i : i + 2], 16) / 255 for i in (1, 3, 5)] + [1.0]
    img = lut[data[0]]
    img[~valid] = 0
    fig, ax = plt.subplots(figsize=(7.5, 6 * data.shape[1] / data.shape[2]))
    ax.imshow(img)
    ax.set_axis_off()
    ax.set_title(title)
    ax.legend(handles=[Patch(color=c.color, label=c.name) for c in classes], loc="center left",
              bbox_to_anchor=(1.01, 0.5), frameon=False)
    return _png(fig)


def confidence_quicklook(confidence: Path, size: int = 1024) -> bytes:
    """Confidence (0-255 → 0-1, nodata 0 transparent) with a colour bar."""
    data, _ = _decimated(confidence, size, [1], Resampling.average)
    img = np.ma.masked_equal(data[0], 0).astype(float) / 255.0
    fig, ax = plt.subplots(figsize=(7, 6 * data.shape[1] / data.shape[2]))
    im = ax.imshow(img, cmap="magma", vmin=0, vmax=1)
    ax.set_axis_off()
    ax.set_title("Confidence (max class probability)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


def read_curves(metrics_csv: Path) -> dict[str, list[tuple[float, float]]]:
    """Series ``{column: [(step, value), ...]}`` from a Lightning CSVLogger ``metrics.csv``."""
    series: dict[str, list[tuple[float, float]]] = {}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            step = float(row.get("step") or 0)
            for key, value in row.items():
                if key in ("step", "epoch") or value in ("", None):
                    continue
                try:
                    series.setdefault(key, []).append((step, float(value)))
                except ValueError:
                    continue
    return series


#: Size of one training-curve panel (inches at the PNG's 100 dpi) and how many panels share a row: two panels
#: fill the report's page width, so the page shows them at their own size and 10-point text stays readable.
CURVE_PANEL_INCHES = (5.2, 3.4)
CURVE_COLUMNS = 2


def curves_plot(series: dict[str, list[tuple[float, float]]], keys: Sequence[Sequence[str]],
                titles: Sequence[str]) -> bytes | None:
    """One panel per group of keys that has data (every key of the group found in ``series`` is drawn)."""
    panels = []
    for group, title in zip(keys, titles, strict=True):
        found = [k for k in group if k in series]
        if found:
            panels.append((found, title))
    if not panels:
        return None
    cols = min(CURVE_COLUMNS, len(panels))
    rows = -(-len(panels) // cols)
    width, height = CURVE_PANEL_INCHES
    with plt.rc_context({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 9}):
        fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, (found, title) in zip(axes.flat, panels, strict=False):
            for key in found:
                xs, ys = zip(*series[key], strict=True)
                ax.plot(xs, ys, label=key.replace("_", " "), marker="." if len(xs) < 30 else None)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
    return _png(fig)
