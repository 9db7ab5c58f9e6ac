"""Segment-aware refinement: the vote, the superpixel and SAM sources, and their errors."""

from __future__ import annotations

import csv
import sys
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from click.testing import Result
from pydantic import ValidationError

from geossl.config import format_validation_error
from geossl.errors import InputError
from geossl.models.rgb import stretch_rgb
from geossl.ssl.refine.sam import masks_to_segments
from geossl.ssl.refine.segments import Segments, SegmentsConfig, segment_vote
from geossl.ssl.refine.superpixels import FelzenszwalbConfig, SlicConfig
from tests.conftest import ROOT, run_cli

# ------------------------------------------------------------------------------------------------ the vote
# segment ids, pseudo-labels and confidences of the hand-computed 4 x 4 example (threshold 0.5, agreement 0.6)
SEG = [[0, 0, 1, 1],
       [0, 0, 1, 1],
       [2, 2, 1, 1],
       [2, 2, 3, 3]]
LAB = [[0, 1, 2, 2],
       [0, 1, 1, 2],
       [1, 1, 1, 1],
       [2, 2, 0, 1]]
CONF = [[0.9, 0.95, 0.8, 0.7],
        [0.6, 0.99, 0.9, 0.4],
        [0.55, 0.55, 0.6, 0.5],
        [0.99, 0.98, 0.3, 0.2]]


def vote(seg: torch.Tensor, lab: torch.Tensor, conf: torch.Tensor, valid: torch.Tensor, k: int, threshold: float,
         min_agreement: float, min_support: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`segment_vote` with the pixels of confidence >= threshold as voters."""
    return segment_vote(seg, lab, conf, conf >= threshold, valid, k, min_agreement, min_support)


def example(n_classes: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 4 x 4 example; pixel (1, 1) is invalid (its confident vote for class 1 must not count)."""
    valid = torch.ones(4, 4, dtype=torch.bool)
    valid[1, 1] = False
    return torch.tensor(SEG), torch.tensor(LAB), torch.tensor(CONF), valid


def test_vote_hand_computed_4x4() -> None:
    seg, lab, conf, valid = example()
    # second image: the same with every label shifted by one class; its votes must not mix with the first's
    shifted = (lab + 1) % 3
    labels, weight = vote(torch.stack([seg, seg]), torch.stack([lab, shifted]), torch.stack([conf, conf]),
                          torch.stack([valid, valid]), 3, threshold=0.5, min_agreement=0.6)
    # segment 0: voters (0,0) c0 .9, (0,1) c1 .95, (1,0) c0 .6 -> V = [1.5, .95, 0], share 1.5/2.45 = .612: class 0
    # segment 1: voters c2 .8 + .7, c1 .9 + .6 + .5 -> V = [0, 2.0, 1.5], share 2.0/3.5 = .571 < .6: ignored
    # segment 2: c1 .55 + .55 = 1.1 against c2 .99 + .98 = 1.97 (two votes each): class 2, share .642
    # segment 3: no pixel reaches the threshold: ignored
    expected_weight = torch.tensor([[1, 1, 0, 0],
                                    [1, 0, 0, 0],  # (1, 1) is invalid
                                    [1, 1, 0, 0],
                                    [1, 1, 0, 0]], dtype=torch.float32)
    for i, shift in enumerate((0, 1)):
        assert torch.equal(weight[i], expected_weight)
        used = expected_weight > 0
        expected = torch.tensor([[0, 0, 9, 9], [0, 0, 9, 9], [2, 2, 9, 9], [2, 2, 9, 9]])
        assert torch.equal(labels[i][used], ((expected + shift) % 3)[used])


def test_vote_follows_confidence_not_count() -> None:
    seg, lab, conf, valid = example()
    # segment 2 at agreement 0.6: the two 0.99/0.98 votes beat the two 0.55 votes
    labels, weight = vote(seg[None], lab[None], conf[None], valid[None], 3, 0.5, 0.6)
    assert labels[0, 3, 0] == 2 and labels[0, 2, 0] == 2 and weight[0, 2, 0] == 1
    # and the invalid confident pixel (1, 1) would have flipped segment 0 to class 1 had it voted
    labels, _ = vote(seg[None], lab[None], conf[None], torch.ones_like(valid)[None], 3, 0.5, 0.0)
    assert labels[0, 0, 0] == 1


def test_salt_noise_inside_a_segment_comes_out_clean() -> None:
    g = torch.Generator().manual_seed(0)
    seg = torch.zeros(32, 32, dtype=torch.long)
    seg[:, 16:] = 1
    truth = torch.where(seg == 0, 1, 3)
    salt = torch.rand(32, 32, generator=g) < 0.15
    noisy = torch.where(salt, torch.randint(0, 5, (32, 32), generator=g), truth)
    conf = torch.rand(32, 32, generator=g) * 0.5 + 0.5  # the salt is as confident as the rest
    valid = torch.ones(32, 32, dtype=torch.bool)
    assert (noisy != truth).sum() > 50
    labels, weight = vote(seg[None], noisy[None], conf[None], valid[None], 5, 0.6, 0.6)
    assert torch.equal(labels[0], truth)
    assert bool((weight == 1).all())


def test_segment_without_confident_majority_stays_ignored() -> None:
    seg = torch.tensor([[0, 0, 1, 1, 2, 2, 2, 2]])
    lab = torch.tensor([[0, 1, 0, 0, 0, 0, 0, 0]])
    conf = torch.tensor([[0.9, 0.9, 0.2, 0.3, 0.95, 0.1, 0.1, 0.1]])
    valid = torch.ones_like(seg, dtype=torch.bool)
    # segment 0: a 50/50 split; segment 1: nothing confident; segment 2: one confident pixel of four
    _, weight = vote(seg[None], lab[None], conf[None], valid[None], 2, 0.8, 0.6)
    assert weight[0].tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]
    _, weight = vote(seg[None], lab[None], conf[None], valid[None], 2, 0.8, 0.6, min_support=0.3)
    assert weight[0].tolist() == [[0, 0, 0, 0, 0, 0, 0, 0]]
    # pixels of no segment (-1) are ignored too, whatever their confidence
    _, weight = vote(torch.full_like(seg, -1)[None], lab[None], conf[None], valid[None], 2, 0.8, 0.6)
    assert not weight.any()


def test_voters_are_the_strategys_used_pixels_unless_a_threshold_is_set() -> None:
    image = torch.zeros(1, 4, 1, 8)
    lab = torch.tensor([[[0, 0, 1, 1, 1, 1, 1, 1]]])
    conf = torch.tensor([[[0.9, 0.9, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]]])
    valid = torch.ones(1, 1, 8, dtype=torch.bool)
    gate = (conf >= 0.8).float()  # what e.g. FixMatch would use
    one_segment = Segments(SegmentsConfig(source=FelzenszwalbConfig(min_size=8)))  # a flat image: one segment
    labels, weight = one_segment.refine(image, torch.zeros(1, 2, 1, 8), lab, conf, valid, gate)
    assert labels.tolist() == [[[0] * 8]] and weight.tolist() == [[[1.0] * 8]]
    # with a threshold of its own the refinement ignores the strategy's gate: 2 x 0.9 against 6 x 0.6
    one_segment = Segments(SegmentsConfig(source=FelzenszwalbConfig(min_size=8), threshold=0.5))
    labels, weight = one_segment.refine(image, torch.zeros(1, 2, 1, 8), lab, conf, valid, gate)
    assert labels.tolist() == [[[1] * 8]] and weight.tolist() == [[[1.0] * 8]]


# ------------------------------------------------------------------------------------------------ superpixels
def drawn_disc(size: int = 64, bands: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy image ``(1, bands, size, size)`` of normalised bands with a disc of another signature; the disc."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (yy - size * 0.45) ** 2 + (xx - size * 0.55) ** 2 < (size * 0.3) ** 2
    inside, outside = torch.tensor([1.0, -0.5, 0.8, -1.2]), torch.tensor([-0.6, 0.7, -0.4, 0.9])
    image = torch.where(disc, inside[:bands, None, None], outside[:bands, None, None])
    image = image + 0.15 * torch.randn(bands, size, size, generator=g)
    return image[None], disc


@pytest.mark.parametrize("source", [SlicConfig(), FelzenszwalbConfig()], ids=["slic", "felzenszwalb"])
def test_superpixels_follow_a_drawn_boundary(source: SlicConfig | FelzenszwalbConfig) -> None:
    image, disc = drawn_disc()
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    ids = source.build()(image, valid)[0]
    assert ids.shape == (64, 64) and ids.dtype == torch.int64 and bool((ids >= 0).all())
    n = int(ids.max()) + 1
    inside = torch.bincount(ids[disc], minlength=n)
    total = torch.bincount(ids.flatten(), minlength=n)
    assert n > 20  # superpixels, not one segment per side
    # almost every pixel lies in a segment on its own side of the drawn circle
    mixed = torch.minimum(inside, total - inside).sum()
    assert mixed <= 0.01 * 64 * 64


def test_slic_segment_count_and_invalid_pixels() -> None:
    image, _ = drawn_disc(size=128)
    valid = torch.ones(1, 128, 128, dtype=torch.bool)
    valid[0, :, :32] = False
    ids = SlicConfig(pixels_per_segment=40).build()(image, valid)[0]
    assert bool((ids[:, :32] == -1).all()) and bool((ids[:, 32:] >= 0).all())
    assert 150 <= len(ids[ids >= 0].unique()) <= 450  # about 96*128/40 = 307


@pytest.mark.parametrize("source", ["slic", "felzenszwalb"])
def test_refinement_cleans_noisy_pseudo_labels_along_the_boundary(source: str) -> None:
    image, disc = drawn_disc()
    g = torch.Generator().manual_seed(1)
    truth = disc.long() * 2  # class 2 inside, 0 outside
    salt = torch.rand(64, 64, generator=g) < 0.2
    labels = torch.where(salt, torch.randint(0, 3, (64, 64), generator=g), truth)
    conf = torch.rand(64, 64, generator=g) * 0.4 + 0.6
    probs = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).float()[None]
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    refine = Segments(SegmentsConfig.model_validate({"source": source}))
    # the strategy's own gate (FixMatch's q >= 0.7) decides who votes
    out, weight = refine.refine(image, probs, labels[None], conf[None], valid, (conf >= 0.7).float()[None])
    used = weight[0] > 0
    assert used.float().mean() > 0.9
    assert (out[0][used] == truth[used]).float().mean() > 0.98
    assert (labels[used] == truth[used]).float().mean() < 0.9  # the input was noisy


# ------------------------------------------------------------------------------------------------ SAM
def tiny_sam() -> torch.nn.Module:
    """A SAM built from the package's own classes, tiny and randomly initialised (seeded)."""
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    encoder = ImageEncoderViT(img_size=64, patch_size=16, embed_dim=32, depth=2, num_heads=2, out_chans=32,
                              use_rel_pos=True, window_size=2, global_attn_indexes=(1,),
                              norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
    prompt = PromptEncoder(embed_dim=32, image_embedding_size=(4, 4), input_image_size=(64, 64), mask_in_chans=8)
    decoder = MaskDecoder(transformer_dim=32, num_multimask_outputs=3, iou_head_depth=2, iou_head_hidden_dim=16,
                          transformer=TwoWayTransformer(depth=1, embedding_dim=32, mlp_dim=64, num_heads=8))
    return Sam(image_encoder=encoder, prompt_encoder=prompt, mask_decoder=decoder)


@pytest.fixture
def sam_checkpoint(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The tiny SAM's state dict saved to a file, and the state dict."""
    pytest.importorskip("segment_anything")
    state = tiny_sam().state_dict()
    path = tmp_path / "tiny_sam.pth"
    torch.save(state, path)
    return path, state


def sam_config(checkpoint: Path, **kwargs: object) -> SegmentsConfig:
    """Segments from SAM, with thresholds at 0 so the random model's masks are kept."""
    source = {"name": "sam", "checkpoint": checkpoint, "points_per_side": 4, "pred_iou_thresh": 0,
              "stability_score_thresh": 0, **kwargs}
    return SegmentsConfig.model_validate({"source": source, "threshold": 0.5})


def test_sam_end_to_end_with_a_tiny_random_sam(sam_checkpoint: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state = sam_checkpoint
    refine = Segments(sam_config(path))
    loaded = refine.source.sam.state_dict()  # type: ignore[attr-defined]
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    image, _ = drawn_disc(size=32)
    images = torch.cat([image, image.flip(-1)])
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[1, :4] = False
    ids = refine.source(images, valid)
    assert ids.shape == (2, 32, 32) and ids.dtype == torch.int64
    assert bool((ids[1, :4] == -1).all()) and bool((ids[valid] >= 0).all())
    # at least one mask covers several pixels (uncovered pixels are segments of one pixel)
    assert any(int(torch.bincount(i[i >= 0]).max()) > 1 for i in ids)
    labels = torch.zeros(2, 32, 32, dtype=torch.long)
    conf = torch.full((2, 32, 32), 0.9)
    out, weight = refine.refine(images, torch.ones(2, 2, 32, 32) / 2, labels, conf, valid, valid.float())
    assert torch.equal(weight, valid.float()) and not out.any()


def test_sam_uncovered_pixels_can_be_ignored(sam_checkpoint: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, _ = sam_checkpoint
    image, _ = drawn_disc(size=32)
    valid = torch.ones(1, 32, 32, dtype=torch.bool)
    own = Segments(sam_config(path)).source(image, valid)
    ignored = Segments(sam_config(path, uncovered="ignore")).source(image, valid)
    covered = ignored >= 0
    assert torch.equal(own[covered], ignored[covered])
    # each uncovered pixel was a segment of its own
    assert len(own[~covered].unique()) == int((~covered).sum())


def test_masks_to_segments_overlaps_go_to_the_highest_predicted_iou() -> None:
    masks = np.zeros((3, 3, 4), bool)
    masks[0, :, :2] = True   # left half, IoU 0.7
    masks[1, :2, 1:3] = True  # overlaps mask 0 at column 1, IoU 0.9
    masks[2, 0, 0] = True    # inside mask 0, IoU 0.5
    ids = masks_to_segments(masks, np.array([0.7, 0.9, 0.5]), "pixel")
    assert ids.tolist() == [[0, 1, 1, 3], [0, 1, 1, 4], [0, 0, 5, 6]]
    ids = masks_to_segments(masks, np.array([0.7, 0.9, 0.5]), "ignore")
    assert ids.tolist() == [[0, 1, 1, -1], [0, 1, 1, -1], [0, 0, -1, -1]]
    assert masks_to_segments(np.zeros((0, 2, 2), bool), np.zeros(0), "ignore").tolist() == [[-1, -1], [-1, -1]]


def test_rgb_rendering_stretches_each_band_over_valid_pixels() -> None:
    band = np.arange(101, dtype=np.float64).reshape(1, 101).repeat(3, axis=0)[:, None, :]  # (3, 1, 101): 0..100
    band[1] *= 10
    valid = np.ones((1, 101), bool)
    valid[0, 50] = False
    rgb = stretch_rgb(band, valid, 2.0, 98.0)
    assert rgb.shape == (1, 101, 3) and rgb.dtype == np.uint8
    assert rgb[0, :3, 0].tolist() == [0, 0, 0] and rgb[0, -3:, 1].tolist() == [255, 255, 255]
    assert rgb[0, 50].tolist() == [0, 0, 0]
    assert np.array_equal(rgb[..., 0], rgb[..., 1])  # the stretch is per band


@pytest.mark.parametrize("model", ["vit_b", "vit_l", "vit_h"])
def test_sam_architecture_of_the_official_models(model: str) -> None:
    pytest.importorskip("segment_anything")
    from segment_anything import sam_model_registry

    from geossl.models.sam import build_sam

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        official = sam_model_registry[model]().state_dict()
        built = build_sam(official).state_dict()
    assert {k: v.shape for k, v in built.items()} == {k: v.shape for k, v in official.items()}


# ------------------------------------------------------------------------------------------------ bad input
def test_missing_sam_checkpoint_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("segment_anything")
    missing = tmp_path / "nowhere" / "sam_vit_b.pth"
    with pytest.raises(InputError) as exc:
        Segments(sam_config(missing))
    assert str(exc.value) == f"{missing}: SAM checkpoint not found (weights are read from local files only)"


def test_unreadable_or_foreign_sam_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("segment_anything")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint\n" * 10)
    with pytest.raises(InputError, match=r"garbage\.pth: cannot read the SAM checkpoint") as exc:
        Segments(sam_config(garbage))
    assert "\n" not in str(exc.value)
    foreign = tmp_path / "foreign.pth"
    torch.save({"weight": torch.zeros(2)}, foreign)
    with pytest.raises(InputError, match=r"foreign\.pth: not a segment-anything SAM checkpoint"):
        Segments(sam_config(foreign))


def test_sam_without_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # importing it raises as if it were absent
    with pytest.raises(InputError, match="refine.source: SAM segments need the segment-anything package"):
        Segments(sam_config(tmp_path / "sam.pth"))


def test_sam_bands_out_of_range(sam_checkpoint: tuple[Path, dict[str, torch.Tensor]]) -> None:
    refine = Segments(sam_config(sam_checkpoint[0], bands=(4, 2, 1)))
    with pytest.raises(InputError, match="refine.source.bands: band index 4 does not exist: the images have 4"):
        refine.source(torch.zeros(1, 4, 8, 8), torch.ones(1, 8, 8, dtype=torch.bool))


def test_unknown_segment_source_names_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        SegmentsConfig.model_validate({"source": "watershed"})
    line = format_validation_error(exc.value)
    assert "source" in line and "watershed" in line and "'slic', 'felzenszwalb', 'sam'" in line
    with pytest.raises(ValidationError, match="checkpoint"):
        SegmentsConfig.model_validate({"source": "sam"})


# ------------------------------------------------------------------------------------------------ in training
MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = {"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8], "patch_size": 64, "batch_size": 2,
        "steps_per_epoch": 1, "threads": 1}


def train_with(folder: Path, catalog: Path, strategy: dict[str, Any], name: str) -> Result:
    """``geossl train`` of the tiny model for 2 steps with the given strategy options."""
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump({**TINY, "strategy": strategy}))
    return run_cli("train", str(MANIFEST), "--catalog", str(catalog), "--out", str(folder / name), "--config",
                   str(config), "--max-steps", "2")


def used_share(run: Path) -> list[float]:
    """The logged share of unlabeled pixels whose pseudo-label was used, per epoch."""
    with open(run / "logs" / "metrics.csv") as f:
        return [float(r["pseudo_used_share"]) for r in csv.DictReader(f) if r.get("pseudo_used_share")]


def test_fixmatch_trains_with_segments(synth_catalog: Path, tmp_path: Path) -> None:
    # threshold 0: FixMatch alone uses every valid pixel; the segments' vote leaves out segments without majority
    base = {"name": "fixmatch", "threshold": 0.0}
    plain = train_with(tmp_path, synth_catalog, {**base, "refine": "none"}, "none")
    refined = train_with(tmp_path, synth_catalog, {**base, "refine": "segments"}, "segments")
    for result in (plain, refined):
        assert result.exit_code == 0, result.output
    assert (tmp_path / "segments" / "model.pt").is_file()
    saved = yaml.safe_load((tmp_path / "segments" / "config.yaml").read_text())
    assert saved["strategy"]["refine"]["name"] == "segments" and saved["strategy"]["refine"]["source"]["name"] == "slic"
    assert used_share(tmp_path / "none") == [1.0, 1.0]
    # the vote leaves out the segments without a majority (none, when the teacher, in eval mode at its first
    # steps, gives most windows one class: the share is then 1); the hand-computed votes are tested above
    shares = used_share(tmp_path / "segments")
    assert len(shares) == 2 and all(0 < share <= 1 for share in shares)


@pytest.mark.parametrize(("refine", "named"), [
    ("magic", "unknown refinement 'magic'"),
    ({"name": "segments", "source": "watershed"}, "strategy.fixmatch.refine.segments.source"),
    ({"name": "segments", "min_agreement": 2}, "strategy.fixmatch.refine.segments.min_agreement"),
])
def test_bad_refine_option_is_one_line(synth_catalog: Path, tmp_path: Path, refine: Any, named: str) -> None:
    result = train_with(tmp_path, synth_catalog, {"name": "fixmatch", "refine": refine}, "run")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_missing_sam_checkpoint_stops_training_with_one_line(synth_catalog: Path, tmp_path: Path) -> None:
    checkpoint = tmp_path / "sam_vit_b.pth"
    refine = {"name": "segments", "source": {"name": "sam", "checkpoint": str(checkpoint)}}
    result = train_with(tmp_path, synth_catalog, {"name": "unimatch", "refine": refine}, "run")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"Error: {checkpoint}: SAM checkpoint not found (weights are read from local " \
                                    "files only)"
    assert not (tmp_path / "run").exists()
