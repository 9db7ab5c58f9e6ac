"""`geossl pretrain`: torchgeo's self-supervised tasks on the synthetic scene, and `geossl train --weights`."""

import csv
import json
import math
import os
from pathlib import Path

import pytest
import timm
import torch

from geossl.models import load_bundle
from geossl.models.weights import EncoderMeta, read_encoder_weights, save_encoder_weights
from geossl.pretrain.augment import multispectral_views
from geossl.pretrain.config import PretrainConfig
from geossl.pretrain.export import build_encoder, encoder_state
from geossl.pretrain.tasks import BYOL, MoCo, Schedule, build_task
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
BANDS = ["blue", "green", "red", "nir"]
TINY = ["--encoder", "tu-test_resnet", "--patch-size", "64", "--batch-size", "4", "--threads", "1"]
TRAIN_TINY = ["--encoder", "tu-test_resnet", "--patch-size", "64", "--batch-size", "2", "--steps-per-epoch", "1",
              "--threads", "1"]


@pytest.fixture(scope="module")
def pretrained(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny encoder pretrained (moco, 3 steps) on the synthetic scene: its output folder.

    Its catalog folder starts empty, so the manifest is ingested there first, from ``--data-root``.
    """
    folder = tmp_path_factory.mktemp("pretrain")
    out = folder / "moco"
    result = run_cli("pretrain", MANIFEST, "--catalog", folder / "catalog", "--data-root", synth_dir, "--out", out,
                     *TINY, "--max-steps", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "encoder.pt")
    return out


def test_pretrain_ingests_a_missing_catalog_from_the_data_root(pretrained: Path, synth_catalog: Path):
    catalog = json.loads((pretrained.parent / "catalog" / "catalog.json").read_text())
    assert [s["id"] for s in catalog["scenes"]] == [s["id"] for s in json.loads(
        (synth_catalog / "catalog.json").read_text())["scenes"]]


def test_pretrain_writes_weights_config_and_logs(pretrained: Path):
    meta, state = read_encoder_weights(pretrained / "encoder.pt")
    assert meta == EncoderMeta(encoder="tu-test_resnet", in_channels=4, bands=BANDS, method="moco", steps=3,
                               patch_size=64)
    assert set(state) == set(build_encoder("tu-test_resnet", 4).state_dict())
    assert "method: moco" in (pretrained / "config.yaml").read_text()
    with open(pretrained / "logs" / "metrics.csv") as f:
        losses = [float(r["train_loss"]) for r in csv.DictReader(f) if r.get("train_loss")]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    assert sorted(p.name for p in pretrained.parent.iterdir()) == ["catalog", "moco"]  # no staging folder left


def test_train_starts_from_the_pretrained_encoder(pretrained: Path, synth_catalog: Path, tmp_path: Path):
    """One step at a vanishing learning rate: the trained encoder is still the pretrained one."""
    _, state = read_encoder_weights(pretrained / "encoder.pt")
    encoders = {}
    for name, weights in (("pretrained", pretrained / "encoder.pt"), ("scratch", "none")):
        result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", tmp_path / name, *TRAIN_TINY,
                         "--weights", weights, "--max-steps", "1", "--lr", "1e-12")
        assert result.exit_code == 0, result.output
        encoders[name] = dict(load_bundle(tmp_path / name / "model.pt")[1].net.encoder.named_parameters())
    for key, value in encoders["pretrained"].items():
        assert torch.allclose(value, state[key], atol=1e-6), key
    assert not all(torch.allclose(v, state[k], atol=1e-3) for k, v in encoders["scratch"].items())


def test_weights_of_another_encoder_or_bands_are_refused(pretrained: Path, synth_catalog: Path, tmp_path: Path):
    args = ["train", MANIFEST, "--catalog", synth_catalog, "--patch-size", "64", "--max-steps", "1"]
    result = run_cli(*args, "--out", tmp_path / "other", "--weights", pretrained / "encoder.pt",
                     "--encoder", "tu-resnet18")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [f"Error: {pretrained / 'encoder.pt'}: weights of encoder "
                                                  "tu-test_resnet, but the model uses tu-resnet18 (--encoder)"]
    meta, state = read_encoder_weights(pretrained / "encoder.pt")
    renamed = tmp_path / "renamed.pt"
    save_encoder_weights(renamed, meta.model_copy(update={"bands": ["b", "g", "r", "swir"]}), state)
    result = run_cli(*args, "--out", tmp_path / "renamed", "--weights", renamed, "--encoder", "tu-test_resnet")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "weights for bands" in result.stderr
    assert not (tmp_path / "other").exists() and not (tmp_path / "renamed").exists()


@pytest.mark.parametrize(("flags", "message"), [
    (["--method", "dino"], "--method: must be one of 'moco', 'simclr' or 'byol'"),
    (["--encoder", "resnet18"], "is not a timm encoder"),
    (["--encoder", "tu-not_a_model"], "--encoder: unknown timm model 'not_a_model'"),
    (["--patch-size", "1024"], "--patch-size: 1024 px is larger than every scene"),
])
def test_bad_options_are_one_line_and_write_nothing(synth_catalog: Path, tmp_path: Path, flags, message):
    out = tmp_path / "out"
    result = run_cli("pretrain", MANIFEST, "--catalog", synth_catalog, "--out", out, *TINY, *flags)
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert not out.exists()


def test_bad_catalog_and_out_are_one_line_and_write_nothing(synth_catalog: Path, pretrained: Path,
                                                            tmp_path: Path):
    empty = tmp_path / "no_catalog"
    empty.mkdir()
    result = run_cli("pretrain", MANIFEST, "--catalog", empty, "--out", tmp_path / "out", *TINY)  # no --data-root
    assert result.exit_code == 2 and "scene.tif: file not found" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not any(empty.iterdir())
    result = run_cli("pretrain", MANIFEST, "--catalog", synth_catalog, "--out", pretrained, *TINY)
    assert result.exit_code == 2 and "already holds encoder.pt" in result.stderr
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    result = run_cli("pretrain", MANIFEST, "--catalog", synth_catalog, "--out", a_file / "out", *TINY)
    assert result.exit_code == 2 and result.stderr.strip().endswith(f"cannot be created ({a_file} is a file)")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        result = run_cli("pretrain", MANIFEST, "--catalog", synth_catalog, "--out", locked / "out", *TINY)
        assert result.exit_code == 2 and "is not writable" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not any(locked.iterdir())


def test_the_timm_backbone_maps_onto_the_segmentation_encoder():
    backbone = timm.create_model("test_resnet", in_chans=4, num_classes=0).eval()
    encoder = build_encoder("tu-test_resnet", 4).eval()
    encoder.load_state_dict(encoder_state(backbone, encoder, "tu-test_resnet"))
    x = torch.randn(2, 4, 64, 64)
    with torch.no_grad():
        assert torch.allclose(encoder(x)[-1], backbone.forward_features(x), atol=1e-5)


def test_views_keep_normalised_values_outside_0_1():
    """kornia's brightness and contrast clamp to [0, 1] by default, which would erase normalised imagery."""
    torch.manual_seed(0)
    x = torch.randn(16, 4, 64, 64) * 2
    views = multispectral_views(64, 4)(x)
    assert views.shape == x.shape
    assert views.min() < -1 and views.max() > 2
    assert not torch.allclose(views, multispectral_views(64, 4)(x))


def test_momentum_and_target_networks_start_as_copies_of_their_own():
    moco = build_task(PretrainConfig(encoder="tu-test_resnet"), 4)
    assert isinstance(moco, MoCo)
    for a, b in zip(moco.backbone.state_dict().values(), moco.backbone_momentum.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    byol = build_task(PretrainConfig(method="byol", encoder="tu-test_resnet", patch_size=32), 4)
    assert isinstance(byol, BYOL)
    online, target = byol.model.backbone.model, byol.model.target.model
    assert online is not target
    assert all(torch.equal(a, b) for a, b in zip(online.state_dict().values(), target.state_dict().values(),
                                                 strict=True))
    assert len(list(online.children())[-1]._forward_hooks) == 1  # only the online wrapper's hook
    trainable = {id(p) for p in byol.parameters() if p.requires_grad}
    assert not any(id(p) in trainable for p in byol.model.target.parameters())


def test_schedule_warms_up_then_decays_to_zero():
    s = Schedule(lr=1e-3, weight_decay=0, total_steps=100, warmup_steps=10)
    assert s.factor(0) == pytest.approx(0.1) and s.factor(9) == pytest.approx(1.0)
    assert s.factor(10) == pytest.approx(1.0) and s.factor(55) == pytest.approx(0.5) and s.factor(100) == 0
