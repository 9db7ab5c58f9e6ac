"""Blending weights and blocks of geossl.windows, on hand-computed values."""

import math

import numpy as np
import pytest
from rasterio.windows import Window

from geossl.windows import WindowGrid, blend_profile, column_blocks, hann_ramp, starts


def test_hann_ramp_hand_values():
    # sin^2(pi/8) and sin^2(3pi/8)
    assert np.allclose(hann_ramp(2), [0.1464466094, 0.8535533906])
    assert np.allclose(hann_ramp(1), [0.5])
    # rising and falling halves complement each other: ramp(i) + ramp(m - 1 - i) = 1
    r = hann_ramp(7)
    assert np.allclose(r + r[::-1], 1.0)
    assert np.all(np.diff(r) > 0) and r[0] > 0


def test_blend_profile_hand_values():
    a, b = 0.1464466, 0.8535534
    assert np.allclose(blend_profile(6, 2), [a, b, 1, 1, b, a])
    assert np.allclose(blend_profile(6, 2, lead=False), [1, 1, 1, 1, b, a])
    assert np.allclose(blend_profile(6, 2, trail=False), [a, b, 1, 1, 1, 1])
    assert np.allclose(blend_profile(6, 0), np.ones(6))
    # overlap beyond half the window: ramps of size // 2
    assert np.allclose(blend_profile(4, 3), [a, b, b, a])
    assert blend_profile(6, 2).dtype == np.float32


def test_weight_is_outer_product_and_edges_keep_full_weight():
    grid = WindowGrid(height=10, width=10, size=6, overlap=2)
    assert grid.row_starts == [0, 4] and grid.col_starts == [0, 4]
    w = grid.weight(Window(4, 0, 6, 6))  # top-right: top and right sides on the raster's edge
    a, b = 0.1464466, 0.8535534
    assert np.allclose(w[0], [a, b, 1, 1, 1, 1])
    assert np.allclose(w[:, 0], [a, a, a, a, b * a, a * a])
    assert np.allclose(w, np.outer(blend_profile(6, 2, lead=False), blend_profile(6, 2, trail=False)))


def _weight_sum(grid: WindowGrid) -> np.ndarray:
    total = np.zeros((grid.height + grid.size, grid.width + grid.size))
    for win in grid:
        r, c = int(win.row_off), int(win.col_off)
        total[r : r + grid.size, c : c + grid.size] += grid.weight(win)
    return total[: grid.height, : grid.width]


def test_weights_sum_to_one_on_a_regular_grid():
    # 128 + 3 * 96 = 416: windows 96 apart, every overlap exactly 32 pixels -> a partition of unity
    grid = WindowGrid(height=416, width=224, size=128, overlap=32)
    assert grid.row_starts == [0, 96, 192, 288] and grid.col_starts == [0, 96]
    assert np.allclose(_weight_sum(grid), 1.0, atol=1e-6)


@pytest.mark.parametrize("shape", [(300, 333), (129, 1000), (130, 131), (50, 70), (128, 128)])
def test_blended_weights_sum_to_one_at_every_pixel(shape):
    grid = WindowGrid(height=shape[0], width=shape[1], size=128, overlap=32)
    total = _weight_sum(grid)
    assert total.min() > 0.1, "a pixel got (almost) no weight"
    # the blend divides by the sum, so the normalised weights of every pixel add up to 1 exactly
    norm = np.zeros_like(total)
    for win in grid:
        r, c = int(win.row_off), int(win.col_off)
        h, w = min(128, shape[0] - r), min(128, shape[1] - c)
        norm[r : r + h, c : c + w] += grid.weight(win)[:h, :w] / total[r : r + h, c : c + w]
    assert np.allclose(norm, 1.0, atol=1e-6)


@pytest.mark.parametrize("n", [1, 50, 127, 128, 129, 300, 1000, 1025])
def test_windows_reach_every_edge(n):
    s = starts(n, 128, 96)
    covered = np.zeros(max(n, 128), dtype=int)
    for x in s:
        covered[x : x + 128] += 1
    assert covered[:n].min() >= 1
    assert s[-1] + 128 >= n and s[0] == 0
    if n >= 128:
        assert s[-1] + 128 == n  # the last window ends on the edge, never past it


def test_column_blocks_cut_at_window_centres():
    grid = WindowGrid(height=500, width=4000, size=128, overlap=32)
    blocks = column_blocks(grid, 1000)
    assert blocks[0][0] == 0 and blocks[-1][1] == 4000
    assert all(a[1] == b[0] for a, b in zip(blocks[:-1], blocks[1:], strict=True))
    assert len(blocks) == math.ceil(4000 / 1000)
    centres = {c + 64 for c in grid.col_starts}
    for (_, border), _next in zip(blocks[:-1], blocks[1:], strict=True):
        assert border in centres
        # only one window column is needed on both sides of the border
        left = set(grid.col_starts_between(0, border))
        right = set(grid.col_starts_between(border, grid.width))
        assert len(left & right) == 1
    needed = sum(len(grid.col_starts_between(a, b)) for a, b in blocks)
    assert needed == len(grid.col_starts) + len(blocks) - 1


def test_column_blocks_single_block_and_bad_width():
    grid = WindowGrid(height=100, width=900, size=128, overlap=32)
    assert column_blocks(grid, 1000) == [(0, 900)]
    assert column_blocks(WindowGrid(50, 60, 128, 32), 256) == [(0, 60)]
    with pytest.raises(ValueError):
        column_blocks(grid, 100)
