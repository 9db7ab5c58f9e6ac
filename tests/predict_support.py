"""Helpers of the prediction tests: small scenes, bundles, checkpoints and a small-receptive-field classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import torch
from torch import nn

from geossl.manifest import ClassDef
from geossl.models import ModelBundle, ModelConfig, Segmenter, save_bundle
from geossl.synth import SYNTH_CLASSES, SynthConfig, write_scene

BANDS = ["blue", "green", "red", "nir"]
MEAN = [800.0, 950.0, 900.0, 2300.0]
STD = [450.0, 400.0, 500.0, 900.0]


def classes() -> list[ClassDef]:
    return [ClassDef(id=i, name=n, color=c) for i, n, c, _ in SYNTH_CLASSES]


def make_bundle(patch_size: int = 64, overlap: int = 16, encoder: str = "tu-resnet10t") -> ModelBundle:
    cfg = ModelConfig(arch="unet", encoder=encoder, in_channels=4, num_classes=len(SYNTH_CLASSES))
    return ModelBundle(classes=classes(), bands=BANDS, mean=MEAN, std=STD, nodata=0, patch_size=patch_size,
                       overlap=overlap, model=cfg, crs="EPSG:32633")


def save_checkpoint(path: Path, bundle: ModelBundle, seed: int = 0) -> Path:
    """A genuine geossl checkpoint (untrained Segmenter, fixed seed)."""
    torch.manual_seed(seed)
    save_bundle(path, bundle, Segmenter(bundle.model))
    return path


def make_scene(out: Path, size: int = 256, border: bool = True, seed: int = 3, tile: int = 128) -> Path:
    """A synthetic 4-band scene (uint16, nodata 0 outside a tilted footprint when ``border``)."""
    return write_scene(out, SynthConfig(size=size, tile=tile, seed=seed, border=border))["image"]


def crop_scene(src: Path, dst: Path, height: int, width: int) -> Path:
    """The top-left ``height`` x ``width`` pixels of ``src`` as a new GeoTIFF."""
    with rasterio.open(src) as s:
        profile = s.profile
        data = s.read(window=((0, height), (0, width)))
        descriptions = s.descriptions
    profile.update(height=height, width=width, tiled=False)
    profile.pop("blockxsize", None)
    profile.pop("blockysize", None)
    with rasterio.open(dst, "w", **profile) as d:
        d.write(data)
        d.descriptions = descriptions
    return dst


class SignatureClassifier(nn.Module):
    """Nearest class signature (a linear discriminant on normalized bands) smoothed over 5 x 5 pixels.

    Its receptive field is 5 pixels, far below any window overlap used in the tests, so a prediction in
    windows must agree with one pass over the whole scene (a UNet's receptive field spans hundreds of pixels,
    more than a test window, so a UNet cannot make that comparison meaningful).
    """

    def __init__(self, bundle: ModelBundle) -> None:
        super().__init__()
        sig = np.array([s for *_, s in SYNTH_CLASSES], dtype=np.float32)  # (K, 4) raw values
        mu = (sig - np.array(bundle.mean, dtype=np.float32)) / np.array(bundle.std, dtype=np.float32)
        self.discriminant = nn.Conv2d(4, len(SYNTH_CLASSES), 1)
        self.smooth = nn.Conv2d(len(SYNTH_CLASSES), len(SYNTH_CLASSES), 5, padding=2, groups=len(SYNTH_CLASSES),
                                bias=False)
        with torch.no_grad():
            self.discriminant.weight.copy_(torch.from_numpy(2 * mu)[:, :, None, None])
            self.discriminant.bias.copy_(torch.from_numpy(-(mu**2).sum(axis=1)))
            self.smooth.weight.fill_(1 / 25)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.smooth(self.discriminant(x))


class CountingModel(nn.Module):
    """Wraps a network and counts the windows it is asked to predict."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.windows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.windows += x.shape[0]
        return self.inner(x)


#: torch's CPU thread count seen by each forward pass of a :class:`ThreadRecorder` (any copy, any thread).
THREADS_SEEN: list[int] = []


class ThreadRecorder(nn.Module):
    """Wraps a network and records, in :data:`THREADS_SEEN`, how many CPU threads each forward pass runs on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        THREADS_SEEN.append(torch.get_num_threads())
        return self.inner(x)


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()
