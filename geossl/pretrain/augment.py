"""The two random views of a window that self-supervised pretraining compares, made for multispectral data.

torchgeo's default pipelines for its MoCo and SimCLR tasks already leave out RGB colour jitter (hue, saturation)
for multispectral imagery, but they use kornia's brightness and contrast with their default ``clip_output=True``,
which clamps every value to [0, 1]: geossl's inputs are normalised per band (zero mean, unit variance), so that
would erase every value below the band mean. The pipeline here keeps torchgeo's choices with clipping off:

- geometry: a random resized crop (25–100 % of the window: a 30 m pixel carries little texture, so smaller crops
  hold too little), flips and quarter turns (overhead imagery has no "up");
- intensity, the same for every band so the spectral shape that tells classes apart survives: brightness (a shift
  of ±0.4 band std) and contrast (×0.6–1.4 about the scene mean), each with p = 0.8;
- torchgeo's multispectral grayscale (every band → the bands' mean, p = 0.2) and a Gaussian blur (p = 0.5).
"""

from __future__ import annotations

import kornia.augmentation as K
import torch
import torchgeo.transforms as T
from torch import nn

#: Smallest share of the window's area a view may crop.
MIN_CROP = 0.25


def multispectral_views(size: int, bands: int) -> nn.Module:
    """A random view ``(N, bands, size, size) → (N, bands, size, size)`` of normalised windows."""
    kernel = max(3, size // 10 // 2 * 2 + 1)  # torchgeo's blur kernel: a tenth of the patch, odd
    return K.AugmentationSequential(
        K.RandomResizedCrop(size=(size, size), scale=(MIN_CROP, 1.0)),
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
        K.RandomRotation90(times=(0, 3), resample="nearest", p=1.0),
        K.RandomBrightness(brightness=(0.6, 1.4), clip_output=False, p=0.8),
        K.RandomContrast(contrast=(0.6, 1.4), clip_output=False, p=0.8),
        T.RandomGrayscale(weights=torch.ones(bands), p=0.2),
        K.RandomGaussianBlur(kernel_size=(kernel, kernel), sigma=(0.1, 2.0), p=0.5),
        data_keys=["input"],
    )
