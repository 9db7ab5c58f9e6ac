"""Augmented views for semi-supervised training (see ``notes/ssl_methods.md``, "Views").

- weak: geometry only, one of the 8 symmetries of the square (:func:`dihedral`), applied to image, labels
  and masks alike; the random crop is the sampler's random window.
- strong: the weak view plus photometric noise that suits multispectral data (:func:`photometric`: per-band
  brightness/contrast, gaussian blur, band dropout or a grayscale-like band mix) and CutMix
  (:func:`cutmix_boxes`, :func:`paste`) from another image of the batch, whose pseudo-labels, confidences and
  masks are pasted with the same box.
- feature perturbation: channel dropout on the encoder features (:func:`feature_dropout`).

Strong views and feature dropout work on whole batches on the model's device, inside the training step. Their
random numbers come from the ``generator`` given (torch's global one when None) and are drawn on the CPU, then
moved to the batch's device: a step given the same generator draws the same views on any device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from geossl.config import StrictModel

#: Band names of colour imagery (aerial and drone RGB): its strong views follow UniMatch's colour jitter.
COLOUR_BANDS = frozenset({"red", "green", "blue", "r", "g", "b"})
BandKind = Literal["auto", "rgb", "multispectral"]


class ViewConfig(StrictModel):
    """Strength of the strong views; a field left unset takes the default of the imagery's band kind.

    ``kind``: ``rgb`` (colour photographs: brightness and contrast jitter ±0.3, no band dropped or mixed),
    ``multispectral`` (the spectrum is the label at 10–30 m: jitter ±0.1, no band dropped or mixed), or
    ``auto``: ``rgb`` when every band is a colour band (:data:`COLOUR_BANDS`), else ``multispectral``
    (:meth:`resolved`). Chosen by :mod:`geossl.ssl.agreement` (bench/view_agreement.py): the strongest views
    whose whole strong view keeps at least 80 % of a supervised model's predictions of every class. On
    fAIr Zanzibar's buildings (RGB, 0.15 m) UniMatch's ±0.4 jitter with greyscale (band mix) kept 60 % of the
    building pixels (greyscale alone 50 %, dropping a band 67 %); ±0.3 without them 82 %. On Zion (Landsat)
    45 % of a per-pixel forest's predictions survived ±0.4 with band drop and mix, 68 % ±0.1 without.
    """

    kind: BandKind = "auto"
    jitter_prob: Annotated[float, Field(ge=0, le=1)] = 0.8
    brightness: Annotated[float, Field(ge=0)] | None = None
    contrast: Annotated[float, Field(ge=0, lt=1)] | None = None
    blur_prob: Annotated[float, Field(ge=0, le=1)] = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    band_drop_prob: Annotated[float, Field(ge=0, le=1)] | None = None
    band_mix_prob: Annotated[float, Field(ge=0, le=1)] | None = None
    cutmix_prob: Annotated[float, Field(ge=0, le=1)] = 0.5
    cutmix_area: tuple[float, float] = (0.02, 0.4)
    cutmix_aspect: tuple[float, float] = (0.3, 1 / 0.3)

    def resolved(self, bands: Sequence[str] = ()) -> ViewConfig:
        """These views with the unset fields taken from the band kind (``auto``: judged from ``bands``)."""
        kind = self.kind
        if kind == "auto":
            kind = "rgb" if bands and all(b.strip().lower() in COLOUR_BANDS for b in bands) else "multispectral"
        preset = _KIND_DEFAULTS[kind]
        unset = {k: v for k, v in preset.items() if getattr(self, k) is None}
        return self.model_copy(update={"kind": kind, **unset})

    def value(self, name: str) -> float:
        """A strength of resolved views (an unset one raises: call :meth:`resolved` first)."""
        v = getattr(self, name)
        if v is None:
            raise ValueError(f"views.{name} is unset: resolve the views for the imagery's bands first")
        return float(v)


#: The defaults of each band kind for the fields :class:`ViewConfig` leaves unset.
_KIND_DEFAULTS: dict[str, dict[str, float]] = {
    "rgb": {"brightness": 0.3, "contrast": 0.3, "band_drop_prob": 0.0, "band_mix_prob": 0.0},
    "multispectral": {"brightness": 0.1, "contrast": 0.1, "band_drop_prob": 0.0, "band_mix_prob": 0.0},
}


# ---------------------------------------------------------------------------------------------- geometry
def dihedral(x: Tensor, rot: int, flip: bool) -> Tensor:
    """Apply one symmetry of the square to the last two axes.

    Mirror left-right if ``flip``, then rotate by ``rot`` quarter turns counter-clockwise.
    """
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, rot % 4, dims=(-2, -1)) if rot % 4 else x


def undo_dihedral(x: Tensor, rot: int, flip: bool) -> Tensor:
    """Inverse of :func:`dihedral` with the same arguments."""
    if rot % 4:
        x = torch.rot90(x, -(rot % 4), dims=(-2, -1))
    return x.flip(-1) if flip else x


def random_dihedral(generator: torch.Generator | None = None) -> tuple[int, bool]:
    """One of the 8 symmetries, uniformly."""
    k = int(torch.randint(0, 8, (1,), generator=generator))
    return k % 4, bool(k // 4)


# ---------------------------------------------------------------------------------------------- photometric
def _gaussian_kernel(sigma: float) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(x: Tensor, sigma: float) -> Tensor:
    """Separable gaussian blur of one image ``(C, H, W)`` (reflect padding at the borders)."""
    k = _gaussian_kernel(sigma).to(x)
    c, r = x.shape[0], (len(k) - 1) // 2
    y = F.pad(x[None], (r, r, 0, 0), mode="reflect" if r < x.shape[-1] else "replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode="reflect" if r < x.shape[-2] else "replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)[0]


def photometric(x: Tensor, valid: Tensor, cfg: ViewConfig, generator: torch.Generator | None = None) -> Tensor:
    """Independent photometric noise for each image of a normalised batch ``(N, C, H, W)``.

    ``cfg`` should be resolved for the imagery's bands (:meth:`ViewConfig.resolved`; unresolved, the
    ``multispectral`` defaults fill the unset fields). Per image: with ``jitter_prob`` each band gets its own
    brightness shift ``U(-b, b)`` (in standard deviations) and contrast factor ``U(1-c, 1+c)`` around its mean; with
    ``blur_prob`` a gaussian blur of sigma ``U(blur_sigma)``; then with ``band_drop_prob`` one random band is set to
    0 (its mean), or else with ``band_mix_prob`` every band is pulled towards the band average by ``U(0.5, 1)``.
    Invalid pixels stay 0.
    """
    n, c = x.shape[:2]
    g = generator
    cfg = cfg.resolved()  # unchanged when resolved for the imagery's bands already

    def uniform(*shape: int) -> Tensor:
        return torch.rand(shape, generator=g)

    out = x.clone()
    mask = valid[:, None].to(x.dtype)
    jitter = (uniform(n) < cfg.jitter_prob)[:, None, None, None].to(x.device)
    mean = (out * mask).sum((2, 3), keepdim=True) / mask.sum((2, 3), keepdim=True).clamp_min(1)
    shift = ((uniform(n, c, 1, 1) * 2 - 1) * cfg.value("brightness")).to(x)
    scale = (1 + (uniform(n, c, 1, 1) * 2 - 1) * cfg.value("contrast")).to(x)
    out = torch.where(jitter, (out - mean) * scale + mean + shift, out)
    lo, hi = cfg.blur_sigma
    for i in torch.nonzero(uniform(n) < cfg.blur_prob).flatten().tolist():
        out[i] = blur(out[i], float(lo + (hi - lo) * uniform()))
    drop = uniform(n) < cfg.value("band_drop_prob")
    for i in torch.nonzero(drop).flatten().tolist():
        out[i, int(torch.randint(0, c, (), generator=g))] = 0
    mix = (~drop) & (uniform(n) < cfg.value("band_mix_prob"))
    for i in torch.nonzero(mix).flatten().tolist():
        a = 0.5 + 0.5 * float(uniform())
        out[i] = (1 - a) * out[i] + a * out[i].mean(0, keepdim=True)
    return out * mask


# ---------------------------------------------------------------------------------------------- cutmix
def cutmix_boxes(n: int, h: int, w: int, cfg: ViewConfig, device: torch.device | str = "cpu",
                 generator: torch.Generator | None = None) -> Tensor:
    """CutMix boxes as boolean masks ``(N, H, W)``.

    For each image, with ``cutmix_prob``, one box of ``U(cutmix_area)`` of the image's area and aspect ratio
    ``U(cutmix_aspect)`` at a random place (clipped to the image).
    """
    g = generator
    boxes = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    for i in range(n):
        if float(torch.rand((), generator=g)) >= cfg.cutmix_prob:
            continue
        area = h * w * float(torch.empty(()).uniform_(*cfg.cutmix_area, generator=g))
        aspect = float(torch.empty(()).uniform_(*cfg.cutmix_aspect, generator=g))
        bh = max(1, min(h, round(math.sqrt(area * aspect))))
        bw = max(1, min(w, round(math.sqrt(area / aspect))))
        top = int(torch.randint(0, h - bh + 1, (), generator=g))
        left = int(torch.randint(0, w - bw + 1, (), generator=g))
        boxes[i, top : top + bh, left : left + bw] = True
    return boxes


def mix_permutation(n: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
                    ) -> Tensor:
    """For each image, another image of the batch to paste from (never itself when ``n > 1``)."""
    if n < 2:
        return torch.zeros(n, dtype=torch.long, device=device)
    return (torch.arange(n) + torch.randint(1, n, (1,), generator=generator)).remainder(n).to(device)


def paste(dst: Tensor, src: Tensor, boxes: Tensor) -> Tensor:
    """``dst`` with ``src`` inside ``boxes`` (``(N, H, W)``; ``dst``/``src`` ``(N, H, W)`` or ``(N, C, H, W)``)."""
    m = boxes if dst.dim() == 3 else boxes[:, None]
    return torch.where(m, src, dst)


# ---------------------------------------------------------------------------------------------- features
def feature_dropout(features: list[Tensor], p: float, generator: torch.Generator | None = None) -> list[Tensor]:
    """Channel dropout (as ``Dropout2d``) with rate ``p`` on every encoder feature.

    Each channel of each image is zeroed with probability ``p`` and the kept ones are scaled by ``1/(1 − p)``.
    The first entry of smp's feature list is the input image itself and is passed through unchanged.
    """
    out = [features[0]]
    for f in features[1:]:
        keep = torch.rand(f.shape[0], f.shape[1], 1, 1, generator=generator) >= p
        out.append(f * (keep.to(f) / (1 - p)))
    return out
