"""Segment source: SAM's automatic masks (``segment-anything``, the optional extra ``sam``) from a local checkpoint.

Each image of the batch is rendered as 8-bit RGB from three of its bands (``bands``: indices into the image's
bands shown as red, green, blue; default ``(2, 1, 0)``, the red, green and blue of a blue-green-red-nir stack such
as the synthetic and Zion manifests'), each band stretched linearly from its 2nd to its 98th percentile over the
image's valid pixels to 0–255 (invalid pixels black), as ``geossl zeroshot`` renders scenes.
``SamAutomaticMaskGenerator`` prompts SAM with a grid of ``points_per_side``² points and keeps the masks whose
predicted IoU and stability pass the thresholds (lower than SAM's 0.88 and 0.95: satellite patches are far from
its training images). Masks may overlap: a pixel belongs to the covering mask with the highest predicted IoU.
Pixels no mask covers are each a segment of their own (``uncovered: pixel``: they keep their own pseudo-label if
it is confident) or no segment (``ignore``).

The checkpoint is a state dict of ``segment_anything.modeling.Sam`` (the official ``sam_vit_b/l/h`` files or any
other size: :func:`geossl.models.sam.load_sam` reads the architecture from the weights). SAM runs on the device
of the images, in float32 and without gradient.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from geossl.errors import InputError
from geossl.models.rgb import stretch_rgb
from geossl.models.sam import load_sam
from geossl.ssl.refine.superpixels import SourceConfig

#: Percentiles of each band mapped to 0 and to 255 in the RGB rendering.
STRETCH = (2.0, 98.0)


class SamConfig(SourceConfig):
    """SAM's automatic masks (module docstring)."""

    name: Literal["sam"] = "sam"
    checkpoint: Path
    bands: tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]] = (2, 1, 0)
    points_per_side: Annotated[int, Field(ge=1)] = 16
    points_per_batch: Annotated[int, Field(ge=1)] = 64
    pred_iou_thresh: Annotated[float, Field(ge=0, le=1)] = 0.8
    stability_score_thresh: Annotated[float, Field(ge=0, le=1)] = 0.85
    uncovered: Literal["pixel", "ignore"] = "pixel"

    def build(self) -> SamSegments:
        """Load the checkpoint (an :class:`InputError` when the package or the file is missing or unreadable)."""
        try:
            from segment_anything import SamAutomaticMaskGenerator
        except ImportError as exc:
            raise InputError("refine.source", "SAM segments need the segment-anything package: "
                                              "pip install 'geossl[sam]'") from exc
        sam = load_sam(self.checkpoint).requires_grad_(False)
        generator = SamAutomaticMaskGenerator(
            sam, points_per_side=self.points_per_side, points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh, stability_score_thresh=self.stability_score_thresh)
        return SamSegments(self, sam, generator)


class SamSegments:
    """The source: SAM's automatic masks of each image, as segment ids."""

    def __init__(self, config: SamConfig, sam: torch.nn.Module, generator: Any) -> None:
        self.config = config
        self.sam = sam
        self.generator = generator

    def __call__(self, images: Tensor, valid: Tensor) -> Tensor:
        """Segment ids ``(N, H, W)`` int64 on the CPU; ``-1``: no segment or an invalid pixel."""
        bands = self.config.bands
        if max(bands) >= images.shape[1]:
            raise InputError("refine.source.bands", f"band index {max(bands)} does not exist: the images have "
                                                    f"{images.shape[1]} bands (0 to {images.shape[1] - 1})")
        self.sam.to(images.device)
        out = []
        for image, ok in zip(images.detach(), valid.detach().cpu().numpy().astype(bool), strict=True):
            rgb = stretch_rgb(image[list(bands)].double().cpu().numpy(), ok, *STRETCH)
            with torch.autocast(images.device.type, enabled=False):  # SAM in float32 under mixed-precision training
                masks = self.generator.generate(rgb)
            stack = np.stack([m["segmentation"] for m in masks]) if masks else np.zeros((0, *rgb.shape[:2]), bool)
            ids = masks_to_segments(stack, np.array([m["predicted_iou"] for m in masks]), self.config.uncovered)
            out.append(np.where(ok, ids, -1))
        return torch.from_numpy(np.stack(out).astype(np.int64))


def masks_to_segments(masks: np.ndarray, scores: np.ndarray, uncovered: Literal["pixel", "ignore"]) -> np.ndarray:
    """Segment ids ``(H, W)`` of boolean masks ``(M, H, W)`` with predicted IoUs ``(M,)``.

    A pixel gets the index of the covering mask with the highest score (the first one on a tie); an uncovered
    pixel gets an id of its own (``M, M+1, ...`` in raster order) with ``uncovered="pixel"``, else ``-1``.
    """
    h, w = masks.shape[1:]
    covered = masks.any(axis=0)
    best = np.where(masks, scores[:, None, None], -np.inf).argmax(axis=0) if len(masks) else np.zeros((h, w), int)
    ids = np.where(covered, best, -1).astype(np.int64)
    if uncovered == "pixel":
        ids[~covered] = len(masks) + np.arange(int((~covered).sum()))
    return ids
