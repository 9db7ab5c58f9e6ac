"""CLIP from a local open_clip checkpoint and its JSON model config; text and masked-crop embeddings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geossl.errors import InputError
from geossl.models.checkpoint import read_state_dict

#: Keys of an open_clip model config that the model classes take.
_MODEL_KEYS = ("embed_dim", "vision_cfg", "text_cfg", "quick_gelu")


@dataclass
class Clip:
    """An open_clip model with what it needs to embed text and images."""

    model: Any
    context_length: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def embed_texts(self, texts: list[str]) -> Any:
        """L2-normalised text embeddings, one row per text."""
        import torch
        from open_clip.tokenizer import SimpleTokenizer

        tokens = SimpleTokenizer(context_length=self.context_length)(texts)
        with torch.inference_mode():
            return torch.nn.functional.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def embed_images(self, crops: list[np.ndarray]) -> Any:
        """L2-normalised image embeddings of ``(h, w, 3)`` uint8 crops (each resized to the model's input)."""
        import torch
        from torch.nn.functional import interpolate, normalize

        size = (self.image_size, self.image_size)
        batch = torch.cat([interpolate(torch.from_numpy(c).permute(2, 0, 1)[None].float() / 255.0, size=size,
                                       mode="bilinear", align_corners=False) for c in crops])
        mean, std = torch.tensor(self.mean)[:, None, None], torch.tensor(self.std)[:, None, None]
        with torch.inference_mode():
            return normalize(self.model.encode_image((batch - mean) / std).float(), dim=-1)


def config_path(checkpoint: Path) -> Path:
    """Where the model config of a CLIP checkpoint lives: beside it, suffix ``.json``."""
    return checkpoint.with_suffix(".json")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(path, "CLIP model config not found (open_clip's JSON, beside the checkpoint)")
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"cannot read the CLIP model config: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict) or any(k not in config for k in _MODEL_KEYS[:3]):
        raise InputError(path, "not an open_clip model config (needs embed_dim, vision_cfg, text_cfg)")
    if "hf_model_name" in config["text_cfg"] or "hf_tokenizer_name" in config["text_cfg"]:
        raise InputError(path, "Hugging Face text towers are not supported (their weights are not local)")
    return config


def load_clip(checkpoint: Path) -> Clip:
    """CLIP from ``checkpoint`` (a state dict) and its config; a missing or bad file is an :class:`InputError`."""
    import open_clip

    state = read_state_dict(checkpoint, "CLIP")
    config = _read_config(config_path(checkpoint))
    kwargs = {k: config[k] for k in _MODEL_KEYS if k in config}
    try:
        model_cls = open_clip.CustomTextCLIP if config.get("custom_text") else open_clip.CLIP
        model = model_cls(**kwargs)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(checkpoint, f"the weights do not fit the CLIP model config ({reason})") from None
    preprocess = config.get("preprocess_cfg", {})
    size = config["vision_cfg"].get("image_size", 224)
    return Clip(model=model.eval(), context_length=int(config["text_cfg"].get("context_length", 77)),
                image_size=int(size if isinstance(size, int) else size[0]),
                mean=tuple(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN)),
                std=tuple(preprocess.get("std", open_clip.OPENAI_DATASET_STD)))
