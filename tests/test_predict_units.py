"""The pure parts of prediction on hand-computed values: blending accumulator, pixel encoding, band checks."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from geossl.errors import InputError
from geossl.io.names import scene_ids
from geossl.manifest import ClassDef
from geossl.predict import encode
from geossl.predict.accumulate import RowAccumulator
from geossl.predict.reader import RowBand
from geossl.predict.runner import ModelRunner
from geossl.predict.scene import check_bands


def test_accumulator_blends_two_windows_by_weight():
    # one row of two 4x4 windows at columns 0 and 2 (overlap 2) over a 4 x 6 scene, 2 classes
    acc = RowAccumulator(classes=2, col0=0, col1=6, height=4, size=4)
    acc.set_valid(0, np.ones((4, 6), dtype=bool))
    w_left = np.tile([1.0, 1.0, 0.75, 0.25], (4, 1)).astype(np.float32)
    w_right = np.tile([0.25, 0.75, 1.0, 1.0], (4, 1)).astype(np.float32)
    p_left = np.stack([np.full((4, 4), 0.8), np.full((4, 4), 0.2)]).astype(np.float32)
    p_right = np.stack([np.full((4, 4), 0.4), np.full((4, 4), 0.6)]).astype(np.float32)
    acc.add(p_left, w_left, 0, 0)
    acc.add(p_right, w_right, 0, 2)
    assert list(acc.advance(0)) == []
    (block,) = list(acc.finish())
    assert block.row0 == 0 and block.prob.shape == (2, 4, 6) and block.valid.all()
    # column 2: (0.8 * 0.75 + 0.4 * 0.25) / (0.75 + 0.25) = 0.7; column 3: (0.8 * 0.25 + 0.4 * 0.75) / 1 = 0.5
    assert np.allclose(block.prob[0, 0], [0.8, 0.8, 0.7, 0.5, 0.4, 0.4])
    assert np.allclose(block.prob.sum(axis=0), 1.0)


def test_accumulator_hands_out_finished_rows_in_order():
    # windows of 4 rows every 2 rows over 8 rows: row starts 0, 2, 4
    acc = RowAccumulator(classes=1, col0=10, col1=13, height=8, size=4)
    seen = []
    for r in (0, 2, 4):
        seen += [(b.row0, b.prob.shape[1]) for b in acc.advance(r)]
        acc.set_valid(r, np.ones((4, 3), dtype=bool))
        acc.add(np.full((1, 4, 3), r + 1.0, dtype=np.float32), np.ones((4, 3), dtype=np.float32), r, 10)
    blocks = list(acc.finish())
    seen += [(b.row0, b.prob.shape[1]) for b in blocks]
    assert seen == [(0, 2), (2, 2), (4, 4)]
    # rows 4-5 are covered by the windows at 2 and 4 (values 3 and 5, equal weights) -> 4; rows 6-7 only by 5
    assert np.allclose(blocks[0].prob[0, :, 0], [4, 4, 5, 5])
    assert acc.nbytes == (1 + 1) * 4 * 3 * 4 + 4 * 3
    with pytest.raises(ValueError):
        list(acc.advance(2))


def test_accumulator_refuses_valid_pixels_without_weight():
    acc = RowAccumulator(classes=1, col0=0, col1=2, height=2, size=2)
    acc.set_valid(0, np.array([[True, True], [True, False]]))
    acc.add(np.ones((1, 1, 2), dtype=np.float32), np.ones((1, 2), dtype=np.float32), 0, 0)
    with pytest.raises(RuntimeError, match="covered by no window"):
        list(acc.finish())


def test_class_nodata_and_dtype():
    assert encode.class_nodata([1, 2, 3], ignore_id=0) == 0
    assert encode.class_nodata([0, 1, 2], ignore_id=0) == 255
    assert encode.class_nodata(list(range(256)), ignore_id=0) == 65535
    assert encode.ClassCoding(ids=(1, 2), nodata=0).dtype == "uint8"
    assert encode.ClassCoding(ids=(1, 300), nodata=0).dtype == "uint16"
    many = [ClassDef(id=i, name=f"c{i}", color="#000000") for i in range(1, 300)]
    assert encode.ClassCoding.of(many, ignore_id=0).dtype == "uint16"


def test_encode_classes_confidence_probabilities():
    coding = encode.ClassCoding(ids=(4, 7, 9), nodata=0)
    index = np.array([[0, 1], [2, 1]])
    valid = np.array([[True, True], [True, False]])
    assert coding.encode(index, valid).tolist() == [[4, 7], [9, 0]]
    top = np.array([[1.0, 0.2], [0.001, 0.5]])
    assert encode.confidence(top, valid).tolist() == [[255, 51], [1, 0]]
    prob = np.array([[[0.5, 1.0]], [[0.5, 0.0]]])
    assert encode.probabilities(prob, np.array([[True, False]])).tolist() == [[[127, 255]], [[127, 255]]]


def test_band_checks():
    expected = ["blue", "green", "red", "nir"]
    check_bands(Path("s.tif"), ("Blue", "green", "red", "nir"), expected)
    check_bands(Path("s.tif"), (None, None, None, None), expected)  # unnamed: count only
    with pytest.raises(InputError, match="s.tif: has 3 bands but the checkpoint expects 4"):
        check_bands(Path("s.tif"), ("blue", "green", "red"), expected)
    with pytest.raises(InputError, match="band order red, green, blue, nir differs"):
        check_bands(Path("s.tif"), ("red", "green", "blue", "nir"), expected)
    with pytest.raises(InputError, match="bands B2, B3, B4, B5 differ"):
        check_bands(Path("s.tif"), ("B2", "B3", "B4", "B5"), expected)
    check_bands(Path("s.tif"), ("B2", "B3", "B4", "B5"), expected, ignore_names=True)


def test_scene_ids_are_unique():
    assert scene_ids([Path("a/x.tif"), Path("b/x.tif"), Path("c/y z.tif")]) == ["x", "x-2", "y_z"]


def test_small_tile_is_padded_by_reflection():
    data = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    band = RowBand(row0=10, col0=5, data=data, valid=np.ones((3, 2), dtype=bool))
    tile, valid = band.tile(10, 5, 4)
    assert tile.shape == (2, 4, 4) and valid.shape == (3, 2)
    assert tile[0].tolist() == [[0, 1, 0, 1], [2, 3, 2, 3], [4, 5, 4, 5], [2, 3, 2, 3]]


class ColumnRamp(nn.Module):
    """Logits that depend on the column only: class 0 grows to the right, class 1 to the left."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = torch.arange(x.shape[-1], dtype=torch.float32).expand(x.shape[0], 1, x.shape[-2], -1)
        return torch.cat([cols, -cols], dim=1)


def test_runner_tta_averages_the_flips_back():
    x = np.zeros((2, 3, 4, 4), dtype=np.float32)
    plain = ModelRunner(ColumnRamp(), "cpu", tta=False)(x)
    tta = ModelRunner(ColumnRamp(), "cpu", tta=True)(x)
    assert plain.shape == (2, 2, 4, 4)
    assert np.allclose(plain.sum(axis=1), 1.0)
    # identity and up-down flip give the ramp, left-right flips give it mirrored: the mean is symmetric
    expected = (plain + plain[..., ::-1]) / 2
    assert np.allclose(tta, expected, atol=1e-6)
    assert not np.allclose(tta, plain)
