"""SAM's automatic masks of a rendered scene tile (the model itself: :mod:`geossl.models.sam`)."""

from __future__ import annotations

from typing import Any

import numpy as np


def automatic_masks(sam: Any, rgb: np.ndarray, points_per_side: int, pred_iou_thresh: float,
                    stability_thresh: float) -> list[np.ndarray]:
    """SAM's automatic masks of an ``(H, W, 3)`` uint8 image, as boolean arrays, largest first."""
    import torch
    from segment_anything import SamAutomaticMaskGenerator

    generator = SamAutomaticMaskGenerator(sam, points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                                          stability_score_thresh=stability_thresh)
    with torch.inference_mode():
        found = generator.generate(rgb)
    return [m["segmentation"] for m in sorted(found, key=lambda m: -int(m["area"]))]
