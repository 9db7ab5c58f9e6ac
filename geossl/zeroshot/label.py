"""Naming SAM's masks with CLIP: each mask gets the class whose prompt embedding is nearest its crop's."""

from __future__ import annotations

from typing import Any

import numpy as np

from geossl.zeroshot.clip import Clip


def class_embeddings(clip: Clip, prompts: list[list[str]]) -> Any:
    """One L2-normalised embedding per class: the mean of its prompts' embeddings."""
    import torch

    return torch.nn.functional.normalize(torch.stack([clip.embed_texts(p).mean(dim=0) for p in prompts]), dim=-1)


def masked_crop(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The mask's bounding box of ``rgb``, pixels outside the mask set to black."""
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    return np.where(mask[r0:r1, c0:c1, None], rgb[r0:r1, c0:c1], 0).astype(np.uint8)


def label_masks(clip: Clip, texts: Any, rgb: np.ndarray, masks: list[np.ndarray], ids: list[int],
                batch: int = 32) -> np.ndarray:
    """A class-id map of ``rgb``'s shape: each mask painted with its nearest class, 0 where no mask is.

    ``masks`` come largest first, so a smaller mask inside a larger one keeps its own class.
    """
    out = np.zeros(rgb.shape[:2], dtype=np.uint16)
    for start in range(0, len(masks), batch):
        chunk = masks[start:start + batch]
        scores = clip.embed_images([masked_crop(rgb, m) for m in chunk]) @ texts.T
        for mask, best in zip(chunk, scores.argmax(dim=1).tolist(), strict=True):
            out[mask] = ids[best]
    return out
