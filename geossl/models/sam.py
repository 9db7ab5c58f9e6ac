"""SAM from a local checkpoint, its architecture read from the weights (ViT-B/L/H or any other size).

Used by ``geossl zeroshot`` (SAM's masks named by CLIP) and by the ``sam`` segment source of the ``segments``
refinement (:mod:`geossl.ssl.refine.sam`).

segment-anything's own classes are built with the sizes the tensors imply; only the mask decoder's attention
heads are not visible in the weights and are SAM's (8).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from geossl.errors import InputError
from geossl.models.checkpoint import read_state_dict

#: Attention heads of SAM's two-way mask-decoder transformer (the same in every released size).
DECODER_HEADS = 8
_ENC = "image_encoder."


def _count(state: dict[str, Any], prefix: str) -> int:
    """How many numbered sub-modules ``prefix.<i>.`` the state holds."""
    found = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(found) + 1 if found else 0


def _encoder_args(state: dict[str, Any]) -> dict[str, Any]:
    """ImageEncoderViT's arguments implied by the tensors."""
    proj = state[_ENC + "patch_embed.proj.weight"]
    embed_dim, patch = int(proj.shape[0]), int(proj.shape[2])
    depth = _count(state, _ENC + "blocks.")
    grid = int(state[_ENC + "pos_embed"].shape[1]) if _ENC + "pos_embed" in state else None
    rel = [r for i in range(depth) if (r := state.get(f"{_ENC}blocks.{i}.attn.rel_pos_h")) is not None]
    if grid is None or len(rel) < depth:
        raise ValueError("the image encoder has no absolute and relative position embeddings as SAM's")
    sizes = [(int(r.shape[0]) + 1) // 2 for r in rel]
    windows = {s for s in sizes if s != grid}
    return {
        "img_size": grid * patch, "patch_size": patch, "embed_dim": embed_dim, "depth": depth,
        "num_heads": embed_dim // int(rel[0].shape[1]),
        "mlp_ratio": state[_ENC + "blocks.0.mlp.lin1.weight"].shape[0] / embed_dim,
        "out_chans": int(state[_ENC + "neck.0.weight"].shape[0]),
        "qkv_bias": _ENC + "blocks.0.attn.qkv.bias" in state, "use_rel_pos": True,
        "window_size": windows.pop() if windows else 0,
        "global_attn_indexes": tuple(i for i, s in enumerate(sizes) if s == grid),
    }


def build_sam(state: dict[str, Any]) -> Any:
    """A segment-anything ``Sam`` of the size the state implies, with the state's weights."""
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    enc = _encoder_args(state)
    dim, grid = enc["out_chans"], enc["img_size"] // enc["patch_size"]
    layers = _count(state, "mask_decoder.transformer.layers.")
    iou_layers = _count(state, "mask_decoder.iou_prediction_head.layers.")
    sam = Sam(
        image_encoder=ImageEncoderViT(**enc, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)),
        prompt_encoder=PromptEncoder(
            embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(enc["img_size"],) * 2,
            mask_in_chans=int(state["prompt_encoder.mask_downscaling.3.weight"].shape[0])),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=int(state["mask_decoder.mask_tokens.weight"].shape[0]) - 1,
            transformer=TwoWayTransformer(
                depth=layers, embedding_dim=dim, num_heads=DECODER_HEADS,
                mlp_dim=int(state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0])),
            transformer_dim=dim, iou_head_depth=iou_layers,
            iou_head_hidden_dim=int(state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0])),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    )
    sam.load_state_dict(state, strict=True)
    return sam.eval()


def load_sam(path: Path) -> Any:
    """SAM from a local checkpoint; a missing, unreadable or non-SAM file is an :class:`InputError`."""
    state = read_state_dict(path, "SAM")
    try:
        return build_sam(state)
    except (KeyError, ValueError, RuntimeError, IndexError, AssertionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, f"not a segment-anything SAM checkpoint ({reason})") from None
