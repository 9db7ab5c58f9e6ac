"""Deterministic synthetic scenes: a georeferenced multi-band image with its land-cover labels.

The scene is generated window by window from a seed, so any size (the benchmarks use 8k-16k pixels a side)
is written with bounded memory and the same seed always gives the same bytes:

* smooth value-noise fields ("elevation", "moisture") give spatially coherent classes: lakes at low elevation,
  bare rock high up, forest where moist, a patchwork of rectangular crop and grass parcels in between;
* straight roads (developed) and meandering rivers (water) are linear features rasterized per window;
* each class has a spectral signature per band, with class-dependent texture and sensor noise;
* a tilted scene footprint leaves a nodata border, as on a real satellite scene.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import rasterio
import yaml
from pydantic import AfterValidator, ConfigDict, Field
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.windows import Window
from shapely.geometry import LineString, Polygon
from shapely.geometry.base import BaseGeometry

from geossl.config import NO_FLAG, StrictModel, known_crs
from geossl.io.atomic import atomic_file, write_text_atomic

#: The synthetic classes: id, name, colour and a 4-band (blue, green, red, nir) signature (reflectance x 1e4).
SYNTH_CLASSES: list[tuple[int, str, str, tuple[int, int, int, int]]] = [
    (1, "Water", "#476ba0", (420, 520, 310, 180)),
    (2, "Developed", "#aa0000", (1450, 1500, 1620, 1850)),
    (3, "Bare", "#b2ada3", (1250, 1420, 1680, 2250)),
    (4, "Forest", "#68aa63", (290, 560, 330, 2950)),
    (5, "Grassland", "#c9c977", (470, 820, 640, 2450)),
    (6, "Cropland", "#dbd83d", (520, 930, 720, 3600)),
]
BAND_NAMES_4 = ["blue", "green", "red", "nir"]
NODATA = 0
TEXTURE = {1: 0.03, 2: 0.12, 3: 0.10, 4: 0.14, 5: 0.06, 6: 0.05}


class SynthConfig(StrictModel):
    """Size, bands and seed of a synthetic scene, and where it sits on Earth (``geossl synth``'s options)."""

    model_config = ConfigDict(frozen=True)

    size: int = Field(default=1024, ge=64, description="Scene width and height in pixels.")
    bands: int = Field(default=4, ge=1, le=64, description="Number of bands.")
    seed: int = Field(default=0, description="Random seed (same seed, same scene).")
    tile: int = Field(default=512, ge=16, description="Internal tile size of the written GeoTIFFs.")
    resolution: float = Field(default=10.0, description="Pixel size in metres.")
    crs: Annotated[str, AfterValidator(known_crs)] = Field(default="EPSG:32633", description="CRS of the scene.")
    origin: Annotated[tuple[float, float], NO_FLAG] = (500000.0, 5_100_000.0)
    border: bool = Field(default=True, description="A nodata border around a tilted footprint; --no-border: "
                                                   "every pixel is valid.")


def _value_noise(coarse: np.ndarray, scale: float, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Bilinear interpolation of a coarse random grid at pixel centres of a window (cell = ``scale`` px)."""
    rr = (np.arange(r0, r0 + h) + 0.5) / scale
    cc = (np.arange(c0, c0 + w) + 0.5) / scale
    ri, ci = np.floor(rr).astype(int), np.floor(cc).astype(int)
    fr, fc = (rr - ri)[:, None], (cc - ci)[None, :]
    fr, fc = fr * fr * (3 - 2 * fr), fc * fc * (3 - 2 * fc)  # smoothstep
    g00 = coarse[np.ix_(ri, ci)]
    g01 = coarse[np.ix_(ri, ci + 1)]
    g10 = coarse[np.ix_(ri + 1, ci)]
    g11 = coarse[np.ix_(ri + 1, ci + 1)]
    noise: np.ndarray = (g00 * (1 - fc) + g01 * fc) * (1 - fr) + (g10 * (1 - fc) + g11 * fc) * fr
    return noise


class SyntheticScene:
    """A scene defined by a :class:`SynthConfig`; :meth:`window` renders any window of it."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        n = config.size
        rng = np.random.default_rng(config.seed)
        # Noise octaves: (cell size in px, weight), each a coarse grid covering the scene plus a margin.
        self._fields: dict[str, list[tuple[float, float, np.ndarray]]] = {}
        for name, octaves in {
            "elevation": [(256, 1.0), (96, 0.5), (32, 0.25)],
            "moisture": [(160, 1.0), (48, 0.45), (16, 0.2)],
            "texture": [(6, 1.0), (2, 0.5)],
        }.items():
            self._fields[name] = [(s, wt, rng.standard_normal((int(n / s) + 3, int(n / s) + 3)))
                                  for s, wt in octaves]
        # Parcels: a grid of fields, each cropland or grassland.
        self._parcel = int(max(24, n // 24))
        self._parcel_class = rng.choice([5, 6], size=(n // self._parcel + 2, n // self._parcel + 2))
        self.lines = self._linear_features(rng)
        self.signatures = self._signatures(rng)
        self.footprint = self._footprint()

    def _linear_features(self, rng: np.random.Generator) -> list[tuple[BaseGeometry, int]]:
        """Roads (straight, class 2) and rivers (meandering, class 1) in pixel coordinates, buffered."""
        n = self.config.size
        out: list[tuple[BaseGeometry, int]] = []
        for _ in range(max(2, n // 256)):
            a, b = rng.uniform(0, n, 2), rng.uniform(0, n, 2)
            if rng.random() < 0.5:
                a[0], b[0] = 0, n
            else:
                a[1], b[1] = 0, n
            out.append((LineString([a, b]).buffer(rng.uniform(1.0, 2.5), cap_style="flat"), 2))
        for _ in range(max(1, n // 512)):
            y = rng.uniform(0.2 * n, 0.8 * n)
            xs = np.linspace(0, n, 64)
            ys = y + np.cumsum(rng.normal(0, n / 120, xs.size))
            out.append((LineString(np.column_stack([xs, ys])).buffer(rng.uniform(2.0, 4.0)), 1))
        return out

    def _signatures(self, rng: np.random.Generator) -> np.ndarray:
        """Per class and band mean values; beyond four bands, smooth random spectra."""
        base = np.array([s for *_, s in SYNTH_CLASSES], dtype=float)  # (K, 4)
        if self.config.bands <= 4:
            return base[:, : self.config.bands]
        extra = rng.uniform(300, 3500, (len(SYNTH_CLASSES), self.config.bands - 4))
        return np.concatenate([base, extra], axis=1)

    def _footprint(self) -> Polygon:
        """A tilted rectangle inside the scene (pixel coordinates); outside it is nodata."""
        n = self.config.size
        if not self.config.border:
            return Polygon([(-1, -1), (n + 1, -1), (n + 1, n + 1), (-1, n + 1)])
        c, half, ang = n / 2, n * 0.47, math.radians(9.0)
        pts = [(-half, -half), (half, -half), (half, half), (-half, half)]
        return Polygon([(c + x * math.cos(ang) - y * math.sin(ang), c + x * math.sin(ang) + y * math.cos(ang))
                        for x, y in pts])

    def _field(self, name: str, r0: int, c0: int, h: int, w: int) -> np.ndarray:
        return sum(wt * _value_noise(g, s, r0, c0, h, w) for s, wt, g in self._fields[name])  # type: ignore[return-value]

    @property
    def transform(self) -> rasterio.Affine:
        """The scene's affine transform."""
        x0, y0 = self.config.origin
        return from_origin(x0, y0, self.config.resolution, self.config.resolution)

    def window(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        """Render ``(image (bands, h, w) uint16, labels (h, w) uint8)`` for a window of the scene."""
        r0, c0, h, w = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        elev = self._field("elevation", r0, c0, h, w)
        moist = self._field("moisture", r0, c0, h, w)
        rr = (np.arange(r0, r0 + h) // self._parcel)[:, None]
        cc = (np.arange(c0, c0 + w) // self._parcel)[None, :]
        labels = self._parcel_class[rr, cc].astype(np.uint8)
        labels[moist > 0.35] = 4
        labels[elev > 0.75] = 3
        labels[elev < -0.95] = 1
        # Features are in scene pixel coordinates: window pixel (c, r) is scene pixel (c + c0, r + r0).
        to_scene = rasterio.Affine.translation(c0, r0)
        burned = rasterize(self.lines, out_shape=(h, w), transform=to_scene, fill=0, dtype="uint8")
        labels = np.where(burned > 0, burned, labels)
        inside = rasterize([(self.footprint, 1)], out_shape=(h, w), transform=to_scene, fill=0, dtype="uint8")
        labels[inside == 0] = NODATA

        sig = np.zeros((self.signatures.shape[1], len(SYNTH_CLASSES) + 1))
        sig[:, 1:] = self.signatures.T
        tex_amp = np.array([0.0] + [TEXTURE[k] for k in range(1, len(SYNTH_CLASSES) + 1)])
        texture = self._field("texture", r0, c0, h, w)
        block_seed = (self.config.seed, r0, c0)
        noise = np.random.default_rng(block_seed).normal(0, 35.0, (sig.shape[0], h, w))
        gain = 1.0 + tex_amp[labels] * texture + 0.04 * elev
        image = sig[:, labels] * gain[None] + noise
        image = np.clip(image, 1, 65534).astype(np.uint16)
        image[:, labels == NODATA] = NODATA
        return image, labels


def band_names(bands: int) -> list[str]:
    """Names of the synthetic bands."""
    return BAND_NAMES_4[:bands] if bands <= 4 else BAND_NAMES_4 + [f"b{i + 1}" for i in range(4, bands)]


def class_colormap() -> dict[int, tuple[int, int, int, int]]:
    """The synthetic classes' palette as a GDAL colour map (nodata 0 transparent)."""
    cmap = {0: (0, 0, 0, 0)}
    for cid, _name, color, _sig in SYNTH_CLASSES:
        cmap[cid] = (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), 255)
    return cmap


def manifest_dict(name: str, bands: int, image: str, labels: str) -> dict[str, object]:
    """A manifest describing a synthetic scene (paths relative to its folder)."""
    return {
        "name": name,
        "description": "Synthetic scene written by `geossl synth`.",
        "classes": [{"id": cid, "name": n, "color": c} for cid, n, c, _ in SYNTH_CLASSES],
        "ignore_id": 0,
        "imagery": {"paths": [image], "bands": band_names(bands)},
        "labels": {"rasters": [labels]},
        "splits": {"blocks": {"rows": 4, "cols": 4, "val_fraction": 0.25, "test_fraction": 0.25,
                              "labeled_fraction": 0.25, "seed": 0}},
    }


def write_scene(out_dir: str | Path, config: SynthConfig | None = None) -> dict[str, Path]:
    """Write ``scene.tif``, ``labels.tif`` and ``manifest.yaml`` into ``out_dir`` (default config if None)."""
    config = config if config is not None else SynthConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = SyntheticScene(config)
    n, t = config.size, config.tile
    common = {
        "driver": "GTiff", "width": n, "height": n, "crs": CRS.from_user_input(config.crs),
        "transform": scene.transform, "tiled": True, "blockxsize": t, "blockysize": t,
        "compress": "deflate", "nodata": NODATA, "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS",
    }
    paths = {"image": out / "scene.tif", "labels": out / "labels.tif", "manifest": out / "manifest.yaml"}
    with atomic_file(paths["image"]) as tmp_img, atomic_file(paths["labels"]) as tmp_lab:
        with (
            rasterio.open(tmp_img, "w", count=config.bands, dtype="uint16", predictor=2, **common) as img,
            rasterio.open(tmp_lab, "w", count=1, dtype="uint8", **common) as lab,
        ):
            img.descriptions = tuple(band_names(config.bands))
            lab.set_band_description(1, "class")
            lab.write_colormap(1, class_colormap())
            lab.colorinterp = [ColorInterp.palette]
            for r0 in range(0, n, t):
                for c0 in range(0, n, t):
                    win = Window(c0, r0, min(t, n - c0), min(t, n - r0))
                    image, labels = scene.window(win)
                    img.write(image, window=win)
                    lab.write(labels[None], window=win)
    write_text_atomic(paths["manifest"], yaml.safe_dump(
        manifest_dict("synthetic", config.bands, "scene.tif", "labels.tif"), sort_keys=False))
    return paths

