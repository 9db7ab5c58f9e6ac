"""``geossl zeroshot`` end to end with tiny randomly initialised SAM and CLIP built from the packages' classes."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import rasterio

from tests.conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")
open_clip = pytest.importorskip("open_clip")

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY_CLIP = {"embed_dim": 16,
             "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def _tiny_sam() -> torch.nn.Module:
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    return Sam(
        image_encoder=ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2,
                                      out_chans=32, qkv_bias=True, use_rel_pos=True, window_size=2,
                                      global_attn_indexes=(1,), norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)),
        prompt_encoder=PromptEncoder(embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64),
                                     mask_in_chans=8),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=32, iou_head_depth=2,
                                 iou_head_hidden_dim=16,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=32, num_heads=8, mlp_dim=64)),
    )


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny SAM state dict and a tiny CLIP state dict with its open_clip config beside it."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(_tiny_sam().state_dict(), folder / "sam.pth")
    torch.save(open_clip.CLIP(**TINY_CLIP).state_dict(), folder / "clip.pt")
    (folder / "clip.json").write_text(json.dumps(TINY_CLIP))
    return folder / "sam.pth", folder / "clip.pt"


def _zeroshot(catalog: Path, sam: Path, clip: Path, out: Path, *extra: str):
    return run_cli("zeroshot", MANIFEST, "--catalog", catalog, "--sam", sam, "--clip", clip, "--out", out,
                   "--tile", "256", "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-thresh", "0",
                   "--threads", "1", *extra)


def test_zeroshot_writes_a_class_id_cog_on_the_catalogs_grid(synth_catalog, weights, tmp_path):
    out = tmp_path / "prior" / "zeroshot.tif"
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text("Water: [a satellite image of a lake, a satellite image of a river]\n")
    result = _zeroshot(synth_catalog, *weights, out, "--prompts-file", prompts)
    assert result.exit_code == 0, result.output
    with rasterio.open(synth_catalog / "images" / "scene.tif") as image, rasterio.open(out) as prior:
        assert (prior.crs, prior.transform, prior.shape) == (image.crs, image.transform, image.shape)
        assert prior.nodata == 0 and prior.dtypes[0] == "uint8" and prior.overviews(1)
        values = prior.read(1)
        classes = json.loads(prior.tags(1)["classes"])
    assert {int(v) for v in np.unique(values)} <= {0, 1, 2, 3, 4, 5, 6}
    assert (values > 0).mean() > 0.05  # SAM found masks and CLIP named them
    assert [c["name"] for c in classes][:2] == ["Water", "Developed"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["zeroshot.tif"]


@pytest.mark.parametrize("broken", ["sam_missing", "clip_missing", "clip_config_missing", "sam_not_sam"])
def test_zeroshot_bad_weights_exit_2_and_write_nothing(synth_catalog, weights, tmp_path, broken):
    sam, clip = weights
    if broken == "sam_missing":
        sam = tmp_path / "nope.pth"
    elif broken == "clip_missing":
        clip = tmp_path / "nope.pt"
    elif broken == "clip_config_missing":
        clip = tmp_path / "lonely.pt"
        clip.write_bytes(weights[1].read_bytes())
    else:
        sam = weights[1]  # a CLIP state dict is no SAM
    out = tmp_path / "out" / "prior.tif"
    result = _zeroshot(synth_catalog, sam, clip, out)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    wanted = {"sam_missing": sam, "clip_missing": clip, "clip_config_missing": clip.with_suffix(".json"),
              "sam_not_sam": sam}[broken]
    assert str(wanted) in lines[0]
    assert not out.parent.exists()


def test_masked_crop_blanks_pixels_outside_the_mask():
    from geossl.zeroshot.label import masked_crop

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    mask = np.zeros((4, 5), bool)
    mask[1, 1] = mask[2, 2] = True
    crop = masked_crop(rgb, mask)
    assert crop.shape == (2, 2, 3)
    assert crop[0, 0].tolist() == rgb[1, 1].tolist() and crop[1, 1].tolist() == rgb[2, 2].tolist()
    assert crop[0, 1].tolist() == [0, 0, 0] and crop[1, 0].tolist() == [0, 0, 0]


def test_zeroshot_unknown_rgb_band_exits_2(synth_catalog, weights, tmp_path):
    result = _zeroshot(synth_catalog, *weights, tmp_path / "prior.tif", "--rgb", "red,green,swir")
    assert result.exit_code == 2
    assert "catalog.json" in result.stderr and "'swir'" in result.stderr
    assert not (tmp_path / "prior.tif").exists()
