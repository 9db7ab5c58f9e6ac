"""Segment source: SAM's automatic masks (``segment-anything``, the optional extra ``sam``) from a local checkpoint.

Each image of the batch is rendered as 8-bit RGB from three of its bands (``bands``: indices into the image's
bands shown as red, green, blue; default ``(2, 1, 0)``, the red, green and blue of a blue-green-red-nir stack such
as the synthetic and Zion manifests'), each band stretched linearly from its 2nd to its 98th percentile over the
image's valid pixels to 0–255 (invalid pixels black). ``SamAutomaticMaskGenerator`` prompts SAM with a grid of
``points_per_side``² points and keeps the masks whose predicted IoU and stability pass the thresholds (lower than
SAM's 0.88 and 0.95: satellite patches are far from its training images). Masks may overlap: a pixel belongs to
the covering mask with the highest predicted IoU. Pixels no mask covers are each a segment of their own
(``uncovered: pixel``: they keep their own pseudo-label if it is confident) or no segment (``ignore``).

The checkpoint is a state dict of ``segment_anything.modeling.Sam`` (the official ``sam_vit_b/l/h`` files). The
architecture is read from the tensors' shapes: image size, patch size, width, depth, heads (from the relative
position tables), windowed and global blocks, neck, prompt encoder and mask decoder sizes; only the mask
decoder's attention heads cannot be read and are SAM's 8. SAM runs on the device of the images, in float32 and
without gradient.
"""

from __future__ import annotations

import pickle
import re
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from geossl.errors import InputError
from geossl.ssl.refine.superpixels import SourceConfig

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

#: Attention heads of SAM's mask decoder (all official models): the only size a state dict does not show.
DECODER_HEADS = 8
#: Percentiles of the linear stretch that renders a band to 0–255.
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
        return SamSegments(self, load_sam(self.checkpoint))


class SamSegments:
    """The source: SAM's automatic masks of each image, as segment ids."""

    def __init__(self, config: SamConfig, sam: Sam) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        self.config = config
        self.sam = sam
        self.generator = SamAutomaticMaskGenerator(
            sam, points_per_side=config.points_per_side, points_per_batch=config.points_per_batch,
            pred_iou_thresh=config.pred_iou_thresh, stability_score_thresh=config.stability_score_thresh)

    def __call__(self, images: Tensor, valid: Tensor) -> Tensor:
        """Segment ids ``(N, H, W)`` int64 on the CPU; ``-1``: no segment or an invalid pixel."""
        bands = self.config.bands
        if max(bands) >= images.shape[1]:
            raise InputError("refine.source.bands", f"band index {max(bands)} does not exist: the images have "
                                                    f"{images.shape[1]} bands (0 to {images.shape[1] - 1})")
        self.sam.to(images.device)
        out = []
        for image, ok in zip(images.detach(), valid.detach(), strict=True):
            rgb = render_rgb(image[list(bands)].float().cpu().numpy(), ok.cpu().numpy().astype(bool))
            with torch.autocast(images.device.type, enabled=False):  # SAM in float32 under mixed-precision training
                masks = self.generator.generate(rgb)
            stack = np.stack([m["segmentation"] for m in masks]) if masks else np.zeros((0, *rgb.shape[:2]), bool)
            ids = masks_to_segments(stack, np.array([m["predicted_iou"] for m in masks]), self.config.uncovered)
            out.append(np.where(ok.cpu().numpy(), ids, -1))
        return torch.from_numpy(np.stack(out).astype(np.int64))


def render_rgb(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``(3, H, W)`` bands → ``(H, W, 3)`` uint8, each stretched from its 2nd to 98th valid percentile."""
    out = np.zeros((*bands.shape[1:], 3), np.uint8)
    if not valid.any():
        return out
    for i, band in enumerate(bands):
        lo, hi = np.percentile(band[valid], STRETCH)
        scaled = (band - lo) / max(float(hi - lo), 1e-6) * 255
        out[..., i] = np.where(valid, np.clip(np.round(scaled), 0, 255), 0).astype(np.uint8)
    return out


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


# ---------------------------------------------------------------------------------------------- loading
def load_sam(path: Path) -> Sam:
    """The SAM model of a local state-dict checkpoint, in eval mode and without gradients."""
    try:
        from segment_anything.modeling import Sam  # noqa: F401
    except ImportError as exc:
        raise InputError("refine.source", "SAM segments need the segment-anything package: "
                                          "pip install 'geossl[sam]'") from exc
    state = read_state_dict(path)
    sam = build_sam(sam_architecture(state, path))
    try:
        sam.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"not a SAM checkpoint: {first_line(exc)}") from exc
    sam.eval().requires_grad_(False)
    return sam


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a checkpoint file (``torch.load`` with ``weights_only``)."""
    if not path.exists():
        raise InputError(path, "SAM checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise InputError(path, f"cannot read the SAM checkpoint: {exc.strerror or exc}") from exc
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise InputError(path, f"not a SAM checkpoint (torch.load failed: {first_line(exc)})") from exc
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise InputError(path, "not a SAM checkpoint (expected a state dict of tensors)")
    return state


def sam_architecture(state: dict[str, Tensor], path: Path) -> dict[str, Any]:
    """The sizes of the SAM whose state dict is ``state`` (module docstring), as :func:`build_sam` takes them."""
    try:
        embed, _, patch, _ = state["image_encoder.patch_embed.proj.weight"].shape
        grid = state["image_encoder.pos_embed"].shape[1]
        depth = count(state, r"image_encoder\.blocks\.(\d+)\.")
        head_dim = state["image_encoder.blocks.0.attn.rel_pos_h"].shape[1]
        spans = [(state[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] + 1) // 2 for i in range(depth)]
        dim = state["image_encoder.neck.0.weight"].shape[0]
        return {
            "img_size": grid * patch, "patch_size": patch, "embed_dim": embed, "depth": depth,
            "num_heads": embed // head_dim, "global_attn_indexes": tuple(i for i, s in enumerate(spans) if s == grid),
            "window_size": next((s for s in spans if s != grid), 0),
            "mlp_ratio": state["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed,
            "qkv_bias": "image_encoder.blocks.0.attn.qkv.bias" in state, "out_chans": dim,
            "mask_in_chans": state["prompt_encoder.mask_downscaling.3.weight"].shape[0],
            "decoder_depth": count(state, r"mask_decoder\.transformer\.layers\.(\d+)\."),
            "decoder_mlp_dim": state["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
            "attention_downsample_rate":
                dim // state["mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"].shape[0],
            "num_multimask_outputs": state["mask_decoder.mask_tokens.weight"].shape[0] - 1,
            "iou_head_depth": count(state, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\."),
            "iou_head_hidden_dim": state["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0],
        }
    except KeyError as exc:
        raise InputError(path, f"not a SAM checkpoint (no tensor {exc.args[0]})") from exc


def build_sam(arch: dict[str, Any]) -> Sam:
    """A randomly initialised SAM of the given sizes (:func:`sam_architecture`), built as ``build_sam.py`` does."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    img, dim = arch["img_size"], arch["out_chans"]
    grid = img // arch["patch_size"]
    encoder = ImageEncoderViT(
        img_size=img, patch_size=arch["patch_size"], embed_dim=arch["embed_dim"], depth=arch["depth"],
        num_heads=arch["num_heads"], mlp_ratio=arch["mlp_ratio"], out_chans=dim, qkv_bias=arch["qkv_bias"],
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=arch["window_size"],
        global_attn_indexes=arch["global_attn_indexes"])
    prompt = PromptEncoder(embed_dim=dim, image_embedding_size=(grid, grid), input_image_size=(img, img),
                           mask_in_chans=arch["mask_in_chans"])
    transformer = TwoWayTransformer(
        depth=arch["decoder_depth"], embedding_dim=dim, mlp_dim=arch["decoder_mlp_dim"], num_heads=DECODER_HEADS,
        attention_downsample_rate=arch["attention_downsample_rate"])
    decoder = MaskDecoder(transformer_dim=dim, transformer=transformer,
                          num_multimask_outputs=arch["num_multimask_outputs"], iou_head_depth=arch["iou_head_depth"],
                          iou_head_hidden_dim=arch["iou_head_hidden_dim"])
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder,
               pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def count(state: dict[str, Tensor], pattern: str) -> int:
    """How many numbered sub-modules ``pattern``'s group matches (``blocks.0.``, ``blocks.1.``... → 2)."""
    found = {int(m.group(1)) for key in state if (m := re.match(pattern, key))}
    return max(found) + 1 if found else 0


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
