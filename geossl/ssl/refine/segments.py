"""``segments``: the pixels of one segment (a field, a lake, a roof) share the confident majority's label.

Segments come from the weak view (:mod:`geossl.ssl.refine.superpixels`: SLIC, the default, or Felzenszwalb;
:mod:`geossl.ssl.refine.sam`: SAM's automatic masks). With ``ŷ_i``, ``q_i`` a pixel's pseudo-label and
confidence, ``s(i)`` its segment, and the voters of a segment its valid pixels that are confident (``q ≥
threshold``; with ``threshold: null``, the pixels the strategy itself would use, weight > 0: FixMatch's and
UniMatch's ``q ≥ τ``)::

    V[s, c]    = Σ_{voters i of s} q_i · 1[ŷ_i = c]          (confidence-weighted votes)
    ĉ(s)       = argmax_c V[s, c]                             (lowest class index on a tie)
    share(s)   = V[s, ĉ(s)] / Σ_c V[s, c]
    support(s) = (number of voters of s) / (number of valid pixels of s)

    ŷ'_i = ĉ(s(i))
    w'_i = 1[valid_i] · 1[Σ_c V[s(i), c] > 0] · 1[share(s(i)) ≥ min_agreement] · 1[support(s(i)) ≥ min_support]

Pixels of a segment without a confident majority, and pixels of no segment (id ``-1``), get weight 0 (ignored).
``w'`` replaces the strategy's weights: an unconfident pixel of a confident segment is used with its segment's
label, with weight 1.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import BeforeValidator, Field
from torch import Tensor

from geossl.ssl.refine.base import RefineConfig, Refinement
from geossl.ssl.refine.sam import SamConfig
from geossl.ssl.refine.superpixels import FelzenszwalbConfig, SegmentSource, SlicConfig


def _source_by_name(value: Any) -> Any:
    """Allow ``source: slic`` for ``source: {name: slic}``."""
    return {"name": value} if isinstance(value, str) else value


SourceChoice = Annotated[SlicConfig | FelzenszwalbConfig | SamConfig, Field(discriminator="name"),
                         BeforeValidator(_source_by_name)]


class SegmentsConfig(RefineConfig):
    """Where segments come from, and when a segment's vote counts (module docstring)."""

    name: Literal["segments"] = "segments"
    source: SourceChoice = SlicConfig()
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.6
    min_support: Annotated[float, Field(ge=0, le=1)] = 0.0


class Segments(Refinement):
    """Segment-wise confidence-weighted vote of the confident pseudo-labels (module docstring)."""

    Config = SegmentsConfig
    config: SegmentsConfig

    def __init__(self, config: SegmentsConfig) -> None:
        super().__init__(config)
        self.source: SegmentSource = config.source.build()

    def refine(self, image_weak: Tensor, probs: Tensor, labels: Tensor, confidence: Tensor, valid: Tensor,
               weight: Tensor) -> tuple[Tensor, Tensor]:
        """Each pixel's segment's label and the vote's weight (module docstring)."""
        cfg = self.config
        confident = weight > 0 if cfg.threshold is None else confidence >= cfg.threshold
        segments = self.source(image_weak, valid).to(labels.device)
        return segment_vote(segments, labels, confidence, valid & confident, valid, probs.shape[1],
                            cfg.min_agreement, cfg.min_support)


def segment_vote(segments: Tensor, labels: Tensor, confidence: Tensor, voters: Tensor, valid: Tensor,
                 num_classes: int, min_agreement: float, min_support: float = 0.0) -> tuple[Tensor, Tensor]:
    """Refined labels and weights ``(N, H, W)`` (module docstring).

    ``segments``: per-image ids ``(N, H, W)`` (``-1``: none); ``voters``: the confident valid pixels. The votes
    of all segments of the batch are one ``scatter_add`` into a (segment × class) table.
    """
    ids = batch_segment_ids(segments)
    has = ids >= 0
    n_seg = int(ids.max()) + 1 if bool(has.any()) else 1  # one empty row when there is no segment
    voter = has & voters & valid
    votes = torch.zeros(n_seg * num_classes, dtype=torch.float32, device=labels.device)
    votes.scatter_add_(0, ids[voter] * num_classes + labels[voter], confidence[voter].float())
    votes = votes.view(n_seg, num_classes)
    total = votes.sum(dim=1)
    best, winner = votes.max(dim=1)
    share = best / total.clamp_min(torch.finfo(total.dtype).tiny)
    support = (torch.bincount(ids[voter], minlength=n_seg).float()
               / torch.bincount(ids[has & valid], minlength=n_seg).clamp_min(1).float())
    ok = (total > 0) & (share >= min_agreement) & (support >= min_support)
    safe = ids.clamp_min(0)
    return torch.where(has, winner[safe], labels), (has & valid & ok[safe]).float()


def batch_segment_ids(segments: Tensor) -> Tensor:
    """Per-image ids ``(N, H, W)`` → ids unique across the batch (image ``n``'s shifted past image ``n−1``'s)."""
    seg = segments.long()
    span = seg.flatten(1).amax(dim=1).clamp_min(-1) + 1
    offset = torch.cumsum(span, 0) - span
    return torch.where(seg >= 0, seg + offset[:, None, None], -1)
