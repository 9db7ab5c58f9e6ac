"""The torch (device) blending accumulator against the NumPy one, on the CPU: same classes, confidence, counts."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from geossl.predict import accumulate_torch
from geossl.predict.accumulate import Decided, RowAccumulator
from geossl.predict.accumulate_torch import TorchRowAccumulator, accumulator_for, blends_on_device
from geossl.predict.run import PredictOptions, predict_with
from geossl.predict.runner import ModuleModel
from geossl.windows import WindowGrid, column_blocks
from tests.predict_support import SignatureClassifier, make_bundle, make_scene, read

H, W, SIZE, OVERLAP, K = 150, 170, 32, 12, 5  # 170 = 7 strides of 20 + 30: the last window column is irregular


def _scene_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel logits whose best class leads the second by at least 1 (no ties after blending), and a valid
    mask with nodata holes: a square hole larger than a window (windows there are skipped) and scattered pixels."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.5, (K, H, W)).astype(np.float32)
    best = rng.integers(0, K, (H, W))
    np.put_along_axis(logits, best[None], logits.max(axis=0, keepdims=True) + 1.0, axis=0)
    valid = rng.random((H, W)) > 0.05
    valid[40:100, 60:120] = False
    return logits, valid


def _window_prob(logits: np.ndarray, r: int, c: int, rng: np.random.Generator) -> np.ndarray:
    """A window's class probabilities: softmax of the scene logits plus a little window-specific noise."""
    x = logits[:, r : r + SIZE, c : c + SIZE] + rng.uniform(-0.1, 0.1, (K, SIZE, SIZE)).astype(np.float32)
    e = np.exp(x - x.max(axis=0))
    return (e / e.sum(axis=0)).astype(np.float32)


def _run(make, grid: WindowGrid, col0: int, col1: int, logits: np.ndarray, valid: np.ndarray) -> list[Decided]:
    """Stream the windows of block ``[col0, col1)`` through an accumulator, as predict_block does."""
    cols = grid.col_starts_between(col0, col1)
    ext0, ext1 = cols[0], min(cols[-1] + SIZE, W)
    acc = make(K, ext0, ext1, H, SIZE)
    rng = np.random.default_rng(col0)
    out: list[Decided] = []
    for row0 in grid.row_starts:
        out += [rows.reduce(col0 - ext0, col1 - ext0, True)() for rows in acc.advance(row0)]
        acc.set_valid(row0, valid[row0 : row0 + SIZE, ext0:ext1])
        for c in cols:
            h, w = min(SIZE, H - row0), min(SIZE, W - c)
            prob = _window_prob(logits, row0, c, rng)
            if valid[row0 : row0 + h, c : c + w].any():
                acc.add(torch.from_numpy(prob)[:, :h, :w], grid.weight(Window(c, row0, SIZE, SIZE))[:h, :w], row0, c)
    return out + [rows.reduce(col0 - ext0, col1 - ext0, True)() for rows in acc.finish()]


def _mosaic(blocks: list[list[Decided]]) -> dict[str, np.ndarray]:
    """Decided rows of every block put back into scene arrays."""
    rows = [np.concatenate([getattr(d, name) for d in block], axis=-2) for block in blocks
            for name in ("index", "top", "valid", "prob")]
    return {name: np.concatenate(rows[i::4], axis=-1) for i, name in enumerate(("index", "top", "valid", "prob"))}


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
def test_torch_accumulator_matches_numpy_over_rows_blocks_and_holes(device):
    logits, valid = _scene_data()
    grid = WindowGrid(H, W, SIZE, OVERLAP)
    blocks = column_blocks(grid, 64)
    assert len(grid.row_starts) > 3 and len(blocks) == 3
    host = [_run(RowAccumulator, grid, c0, c1, logits, valid) for c0, c1 in blocks]

    def on_device(*args: int) -> TorchRowAccumulator:
        return TorchRowAccumulator(*args, device=device)

    blended_there = [_run(on_device, grid, c0, c1, logits, valid) for c0, c1 in blocks]
    a, b = _mosaic(host), _mosaic(blended_there)
    assert a["index"].shape == (H, W) and a["prob"].shape == (K, H, W)
    assert np.array_equal(a["valid"], valid) and np.array_equal(b["valid"], valid)
    ordered = np.sort(a["prob"], axis=0)
    assert (ordered[-1] - ordered[-2])[valid].min() > 1e-3  # no ties: the classes must agree exactly
    assert np.array_equal(a["index"][valid], b["index"][valid])
    assert b["index"].dtype == np.uint8
    assert np.allclose(a["top"][valid], b["top"][valid], rtol=0, atol=1e-6)
    assert np.allclose(a["prob"][:, valid], b["prob"][:, valid], rtol=0, atol=1e-6)
    for block_a, block_b in zip(host, blended_there, strict=True):
        for da, db in zip(block_a, block_b, strict=True):
            assert da.row0 == db.row0 and np.array_equal(da.counts, db.counts)
    total = sum(d.counts for block in host for d in block)
    assert total.sum() == valid.sum() and np.array_equal(total, np.bincount(a["index"][valid], minlength=K))


def test_torch_accumulator_refuses_valid_pixels_without_weight():
    acc = TorchRowAccumulator(classes=1, col0=0, col1=2, height=2, size=2)
    acc.set_valid(0, np.array([[True, True], [True, False]]))
    acc.add(torch.ones((1, 1, 2)), np.ones((1, 2), dtype=np.float32), 0, 0)
    (rows,) = list(acc.finish())
    pending = rows.reduce(0, 2, False)
    with pytest.raises(RuntimeError, match="covered by no window"):
        pending()
    assert acc.nbytes == (1 + 1) * 2 * 2 * 4 + 2 * 2


def test_the_accumulator_follows_the_models_device(monkeypatch):
    assert not blends_on_device(torch.device("cpu"))
    assert blends_on_device(torch.device("cuda")) and blends_on_device(torch.device("cuda:1"))
    assert type(accumulator_for(torch.device("cpu"), 3, 0, 10, 20, 8)) is RowAccumulator
    monkeypatch.setattr(accumulate_torch, "_TORCH_ON_CPU", True)
    acc = accumulator_for(torch.device("cpu"), 3, 0, 10, 20, 8)
    assert isinstance(acc, TorchRowAccumulator) and acc.device == torch.device("cpu")


def test_predict_with_the_device_accumulator_writes_the_same_rasters(tmp_path: Path, monkeypatch):
    """A synthetic scene (nodata border, three column blocks, an irregular last window) predicted both ways."""
    scene = make_scene(tmp_path / "scene", size=560, seed=5)  # 560 = 10 strides of 48 + 16
    bundle = make_bundle(patch_size=64, overlap=16)
    model = ModuleModel(SignatureClassifier(bundle))
    options = PredictOptions(scheduler="synchronous", block_width=256, batch_size=3, threads=1, probabilities=True,
                             out=tmp_path / "host", quiet=True)
    (item_host,) = predict_with(bundle, model, [scene], options)
    monkeypatch.setattr(accumulate_torch, "_TORCH_ON_CPU", True)
    (item_torch,) = predict_with(bundle, model, [scene], options.model_copy(update={"out": tmp_path / "torch"}))
    assert item_host["properties"]["geossl:prediction"]["blocks"] == 3
    host, dev = (read(tmp_path / name / "scene_classes.tif")[0] for name in ("host", "torch"))
    with rasterio.open(scene) as src:
        valid = (src.read() != 0).all(axis=0)
    assert 0.5 < valid.mean() < 1.0 and len(np.unique(host[valid])) > 1
    assert np.array_equal(host, dev)
    for name in ("confidence", "probabilities"):
        a, b = (read(tmp_path / d / f"scene_{name}.tif").astype(int) for d in ("host", "torch"))
        assert np.abs(a - b).max() <= 1
    for key in ("geossl:class_pixels", "geossl:mean_confidence"):
        assert item_host["properties"][key] == item_torch["properties"][key]
