"""Every bad input of the prediction issue: exit code 2, one line naming the file, nothing left behind."""

import os
import pickle
from pathlib import Path

import pytest
import rasterio
import torch

from tests.conftest import run_cli, unwritable_folder
from tests.predict_support import make_bundle, make_scene, save_checkpoint


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    base = tmp_path_factory.mktemp("good")
    return make_scene(base / "scene", size=128), save_checkpoint(base / "model.pt", make_bundle())


def _rewrite(src: Path, dst: Path, *, bands=None, descriptions=None, crs=True) -> Path:
    with rasterio.open(src) as s:
        profile, data, desc = s.profile, s.read(), s.descriptions
    if bands is not None:
        data = data[bands]
        desc = tuple(desc[i] for i in bands)
        profile["count"] = len(bands)
    if not crs:
        profile.pop("crs")
    with rasterio.open(dst, "w", **profile) as d:
        d.write(data)
        d.descriptions = descriptions or desc
    return dst


def _refused(out: Path, pattern: str, *args) -> None:
    before = sorted(out.parent.iterdir()) if out.parent.exists() else []
    result = run_cli("predict", *args, "--out", out, "--scheduler", "synchronous")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert pattern in lines[0], lines[0]
    assert not out.exists()
    assert sorted(out.parent.iterdir()) == before, "something was left behind"


def test_band_count_mismatch(good, tmp_path):
    scene, ckpt = good
    bad = _rewrite(scene, tmp_path / "three.tif", bands=[0, 1, 2])
    _refused(tmp_path / "out", "three.tif: has 3 bands but the checkpoint expects 4 (blue, green, red, nir)",
             ckpt, bad)


def test_band_order_mismatch(good, tmp_path):
    scene, ckpt = good
    bad = _rewrite(scene, tmp_path / "swapped.tif", bands=[2, 1, 0, 3])
    _refused(tmp_path / "out", "swapped.tif: band order red, green, blue, nir differs from the checkpoint's "
                               "blue, green, red, nir", ckpt, bad)


def test_scene_without_crs(good, tmp_path):
    scene, ckpt = good
    bad = _rewrite(scene, tmp_path / "nocrs.tif", crs=False)
    _refused(tmp_path / "out", "nocrs.tif: scene has no CRS", ckpt, bad)


def test_unreadable_scene(good, tmp_path):
    _, ckpt = good
    (tmp_path / "notes.tif").write_text("not an image\n")
    _refused(tmp_path / "out", "notes.tif: not a raster GDAL can read", ckpt, tmp_path / "notes.tif")


def test_truncated_scene(good, tmp_path):
    scene, ckpt = good
    data = scene.read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) // 2])
    _refused(tmp_path / "out", "cut.tif: truncated GeoTIFF", ckpt, tmp_path / "cut.tif")


def test_missing_scene_among_good_ones(good, tmp_path):
    scene, ckpt = good
    _refused(tmp_path / "out", "missing.tif: scene not found", ckpt, scene, tmp_path / "missing.tif")


def test_plain_state_dict_is_not_a_geossl_checkpoint(good, tmp_path):
    scene, _ = good
    torch.save({"conv.weight": torch.zeros(2, 2)}, tmp_path / "plain.pt")
    _refused(tmp_path / "out", "plain.pt: not a geossl checkpoint (no geossl model description inside)",
             tmp_path / "plain.pt", scene)


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo should never run",))


def test_pickled_object_is_refused_without_running_it(good, tmp_path):
    scene, _ = good
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"geossl": _Payload()}, f)
    _refused(tmp_path / "out", "evil.pt: not a geossl checkpoint (torch cannot load it safely", tmp_path / "evil.pt",
             scene)


def test_text_file_checkpoint(good, tmp_path):
    scene, _ = good
    (tmp_path / "model.ckpt").write_text("hello")
    _refused(tmp_path / "out", "model.ckpt: not a geossl checkpoint", tmp_path / "model.ckpt", scene)


def test_patch_size_not_a_multiple_of_the_model_stride(good, tmp_path):
    scene, ckpt = good
    _refused(tmp_path / "out", "--patch-size: 80 is not a multiple of the model's stride 32", ckpt, scene,
             "--patch-size", "80")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device(good, tmp_path):
    scene, ckpt = good
    _refused(tmp_path / "out", "--device: cuda asked for but torch sees no CUDA device here", ckpt, scene,
             "--device", "cuda")


def test_output_is_a_file(good, tmp_path):
    scene, ckpt = good
    (tmp_path / "out").write_text("x")
    result = run_cli("predict", ckpt, scene, "--out", tmp_path / "out", "--scheduler", "synchronous")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "out: output exists and is not a folder" in result.stderr
    assert (tmp_path / "out").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unwritable_output_folder(good, tmp_path):
    scene, ckpt = good
    folder = unwritable_folder(tmp_path)
    before = sorted(folder.iterdir())
    for out in (folder, folder / "new"):
        result = run_cli("predict", ckpt, scene, "--out", out, "--scheduler", "synchronous")
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{out}: output folder is not writable" in lines[0], result.stderr
    assert sorted(folder.iterdir()) == before
    if folder.is_relative_to(tmp_path):
        folder.chmod(0o755)


def test_mid_run_read_failure_leaves_nothing(good, tmp_path):
    """A tile that cannot be decoded half-way through the scene: exit 2, the staging folder removed."""
    scene, ckpt = good
    src = make_scene(tmp_path / "big", size=512, tile=64)
    data = bytearray(src.read_bytes())
    with rasterio.open(src) as s:
        offset = int(s.get_tag_item("BLOCK_OFFSET_3_5", "TIFF", bidx=1))
        size = int(s.get_tag_item("BLOCK_SIZE_3_5", "TIFF", bidx=1))
    data[offset : offset + size] = b"\xff" * size
    (tmp_path / "corrupt.tif").write_bytes(bytes(data))
    for extra in (("--scheduler", "synchronous"), ("--workers", "2", "--block-width", "256")):
        result = run_cli("predict", ckpt, tmp_path / "corrupt.tif", "--out", tmp_path / "out", *extra)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "corrupt.tif: cannot read scene" in lines[0], result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["big", "corrupt.tif"]
