"""Where two georeferenced views of a batch overlap, pixel for pixel, through their weak geometries.

Pixel ``(r, c)`` of a window's canonical (un-augmented) frame shows map pixel ``origin + (r, c)``; the tensor
of the weak view is ``dihedral(canonical, rot, flip)`` (:mod:`geossl.data.views`). For a view ``i`` with
partner ``j`` and ``(dy, dx) = origin_j − origin_i``, the canonical frames meet where
``canonical_i[r, c] = canonical_j[r − dy, c − dx]``. :func:`partner_in_own_frame` moves any per-pixel tensor of
the partners into each view's augmented frame: undo j's geometry, shift by ``(dy, dx)``, apply i's geometry.
"""

from __future__ import annotations

import torch
from torch import Tensor

from geossl.data.views import dihedral, undo_dihedral


def partner_in_own_frame(t: Tensor, origin: Tensor, geom: Tensor, partner: Tensor) -> tuple[Tensor, Tensor]:
    """Each view's partner tensor in the view's own augmented frame, and where the two windows overlap.

    For each view ``i``: the partner's ``t`` (``(N, ..., H, W)``) seen in i's augmented frame, and the mask
    ``(N, H, W)`` of the pixels the two windows share (all False without a partner).

    Windows are square, so every geometry keeps the shape.
    """
    n, h, w = t.shape[0], t.shape[-2], t.shape[-1]
    out = torch.zeros_like(t)
    inside = torch.zeros(n, h, w, dtype=torch.bool, device=t.device)
    for i in range(n):
        j = int(partner[i])
        if j < 0:
            continue
        dy, dx = (int(v) for v in origin[j] - origin[i])
        r0, r1, c0, c1 = max(0, dy), min(h, h + dy), max(0, dx), min(w, w + dx)
        if r0 >= r1 or c0 >= c1:
            continue
        canon_j = undo_dihedral(t[j], int(geom[j, 0]), bool(geom[j, 1]))
        shifted = torch.zeros_like(canon_j)
        shifted[..., r0:r1, c0:c1] = canon_j[..., r0 - dy : r1 - dy, c0 - dx : c1 - dx]
        mask = torch.zeros(h, w, dtype=torch.bool, device=t.device)
        mask[r0:r1, c0:c1] = True
        rot, flip = int(geom[i, 0]), bool(geom[i, 1])
        out[i] = dihedral(shifted, rot, flip)
        inside[i] = dihedral(mask, rot, flip)
    return out, inside
