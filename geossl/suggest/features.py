"""Encoder features of candidate windows, for the diversity term of the selection.

Each window's pixels (normalised with the checkpoint's statistics, padded by reflection to a multiple of the
network's stride) go through the encoder alone; its deepest feature map is averaged over the window and scaled
to unit length. Two windows that the network sees alike (the same kind of lake) then lie close together,
whatever their distance on the ground.
"""

from __future__ import annotations

import numpy as np
import torch
from rasterio.windows import Window

from geossl.models import ModelBundle, Segmenter
from geossl.predict.reader import open_scene, scene_mask
from geossl.predict.runner import resolve_device
from geossl.predict.scene import Scene
from geossl.suggest.candidates import Candidates


@torch.inference_mode()
def window_features(model: Segmenter, bundle: ModelBundle, scenes: list[Scene], candidates: Candidates, size: int,
                    batch_size: int) -> np.ndarray:
    """``(N, C)`` unit-length pooled deepest encoder features of the candidates, in their order."""
    device = resolve_device("auto")
    model = model.to(device).eval()
    pad = -size % model.stride
    features: np.ndarray | None = None
    for s, scene in enumerate(scenes):
        rows = np.flatnonzero(candidates.scene == s)
        norm = bundle.model_copy(update={"nodata": scene.nodata})
        with open_scene(scene) as src:
            for b in range(0, len(rows), batch_size):
                part = rows[b : b + batch_size]
                windows = [Window(int(candidates.col[i]), int(candidates.row[i]), size, size) for i in part]
                x = np.stack([norm.normalize(src.read(list(range(1, scene.count + 1)), window=w),
                                             scene_mask(src, scene, w))[0] for w in windows])
                x = np.pad(x, ((0, 0), (0, 0), (0, pad), (0, pad)), mode="reflect")
                deepest = model.features(torch.from_numpy(x).to(device))[-1]
                pooled = torch.nn.functional.normalize(deepest.float().mean(dim=(2, 3)), dim=1).cpu().numpy()
                if features is None:
                    features = np.zeros((len(candidates), pooled.shape[1]), dtype=np.float32)
                features[part] = pooled
    return features if features is not None else np.zeros((len(candidates), 0), dtype=np.float32)
