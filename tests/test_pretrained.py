"""Pretrained weights by name (torchgeo's, timm's) from the hub caches, matched to the imagery's bands.

Each test writes real weights (the real model class, its state dict) into temporary torch.hub and Hugging Face
hub caches under the names the loaders look for; HF_HUB_OFFLINE keeps every test off the network.
"""

import pathlib

import pytest
import timm
import torch
from safetensors.torch import save_file
from torchgeo.models import get_weight, resnet18, unet

from geossl.errors import InputError
from geossl.models import ModelConfig, Segmenter, load_bundle
from geossl.models.bandmap import band_names, input_channels
from geossl.models.hubcache import UrlFile
from tests.conftest import ROOT, run_cli
from tests.test_train_bad_input import assert_one_line_error

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
OLI = "ResNet18_Weights.LANDSAT_OLI_SR_MOCO"  # SR_B1..SR_B7: coastal, blue, green, red, nir, swir1, swir2
TCD = "Unet_Weights.OAM_RGB_RESNET34_TCD"  # a whole U-Net (smp resnet34), R, G, B, 2 classes
TAG = "test_resnet.r160_in1k"  # timm's tiny test model
BANDS = ["blue", "green", "red", "nir"]  # the synthetic scene's
SMALL = {"decoder_channels": [16, 8, 8, 8, 8], "num_classes": 3}
TRAIN = ["--encoder", "tu-test_resnet", "--decoder-channels", "16", "--decoder-channels", "8", "--decoder-channels",
         "8", "--decoder-channels", "8", "--decoder-channels", "8", "--patch-size", "64", "--batch-size", "2",
         "--max-steps", "1", "--threads", "1"]


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty torch.hub and Hugging Face hub caches; downloads forbidden."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path


def cache_torchgeo(name, model):
    """``model``'s state dict where torch.hub keeps torchgeo's weights ``name``."""
    path = pathlib.Path(torch.hub.get_dir()) / "checkpoints" / pathlib.Path(get_weight(name).url).name
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    return model.state_dict()


def cache_timm(caches, tag, model):
    """``model``'s state dict where huggingface_hub keeps timm's ``timm/TAG`` (model.safetensors of refs/main)."""
    repo = caches / "hf" / f"models--timm--{tag}"
    revision = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    save_file(model.state_dict(), repo / "snapshots" / revision / "model.safetensors")
    return model.state_dict()


def assert_same_except(loaded, source, prefix, skip):
    """Every tensor of ``source`` but ``skip`` is in ``loaded`` under ``prefix``, equal."""
    for key, value in source.items():
        if key not in skip:
            assert torch.equal(loaded[prefix + key], value), key


def test_torchgeo_encoder_weights_fill_the_encoder_by_band_name(caches):
    source = cache_torchgeo(OLI, resnet18(in_chans=7))
    bands = ["nir", "red", "green", "blue", "ndvi"]
    model = Segmenter(ModelConfig(encoder="tu-resnet18", in_channels=5, weights=OLI, **SMALL), bands)
    loaded = model.net.encoder.state_dict()
    conv = loaded["model.conv1.weight"]
    for i, j in enumerate([4, 3, 2, 1]):  # SR_B5, SR_B4, SR_B3, SR_B2
        assert torch.equal(conv[:, i], source["conv1.weight"][:, j])
    assert not conv[:, 4].any()  # ndvi: no weights, a zero kernel
    assert_same_except(loaded, source, "model.", {"conv1.weight", "fc.weight", "fc.bias"})


def test_torchgeo_unet_weights_fill_the_whole_network(caches):
    source = cache_torchgeo(TCD, unet(classes=2, encoder_name="resnet34", encoder_weights=None, in_channels=3))
    model = Segmenter(ModelConfig(encoder="resnet34", in_channels=3, num_classes=2, weights=TCD),
                      ["blue", "green", "red"])
    loaded = model.net.state_dict()
    assert torch.equal(loaded["encoder.conv1.weight"], source["encoder.conv1.weight"].flip(1))  # R, G, B reversed
    assert_same_except(loaded, source, "", {"encoder.conv1.weight"})
    four = Segmenter(ModelConfig(encoder="resnet34", in_channels=3, num_classes=4, weights=TCD),
                     ["red", "green", "blue"]).net.state_dict()
    assert_same_except(four, source, "", {"segmentation_head.0.weight", "segmentation_head.0.bias"})
    assert four["segmentation_head.0.weight"].shape[0] == 4  # another task's classes: a fresh head


def test_a_cached_file_of_another_model_is_refused(caches):
    cache_torchgeo(OLI, timm.create_model("test_resnet", in_chans=7))  # not a resnet18
    with pytest.raises(InputError, match=f"--weights {OLI} .*: weights do not fit timm's resnet18: .* missing"):
        Segmenter(ModelConfig(encoder="tu-resnet18", in_channels=4, weights=OLI, **SMALL), BANDS)


def test_timm_tag_fills_the_encoder_from_the_hugging_face_cache(caches):
    source = cache_timm(caches, TAG, timm.create_model("test_resnet"))
    model = Segmenter(ModelConfig(encoder="tu-test_resnet", in_channels=4, weights=f"timm:{TAG}", **SMALL), BANDS)
    loaded = model.net.encoder.state_dict()
    conv = loaded["model.conv1.0.weight"]
    assert torch.equal(conv[:, :3], source["conv1.0.weight"].flip(1))  # timm's ImageNet weights take R, G, B
    assert not conv[:, 3].any()
    assert_same_except(loaded, source, "model.", {"conv1.0.weight", "fc.weight", "fc.bias"})


def test_train_starts_from_timm_weights(caches, synth_catalog):
    source = cache_timm(caches, TAG, timm.create_model("test_resnet"))
    out = caches / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TRAIN, "--lr", "1e-9",
                     "--weights", f"timm:{TAG}")
    assert result.exit_code == 0, result.output
    _, model = load_bundle(out / "model.pt")
    trained = model.net.encoder.model.layer2[0].conv1.weight
    assert torch.allclose(trained, source["layer2.0.conv1.weight"], atol=1e-6)  # one step of lr 1e-9 from them


@pytest.mark.parametrize(("weights", "flags", "named"), [
    ("ResNet18_Weights.NO_SUCH", [], "torchgeo's ResNet18_Weights has no NO_SUCH"),
    ("Nothing_Weights.AT_ALL", [], "has no weights Nothing_Weights"),
    ("timm:no_such_model", [], "timm has no model"),
    (TCD, [], "train with --arch unet --encoder resnet34"),
    (OLI, [], "train with --encoder tu-resnet18"),
    ("ResNet50_Weights.SENTINEL1_ALL_MOCO", ["--encoder", "tu-resnet50"], "none of the imagery's bands"),
    ("ResNet50_Weights.FMOW_RGB_GASSL", ["--encoder", "tu-resnet50"], "weights for 3 bands they do not name"),
    (OLI, ["--encoder", "tu-resnet18"], "expected resnet18_landsat_oli_sr_moco-660e82ed.pth in {torch}"),
    (f"timm:{TAG}", [], f"expected model.safetensors or pytorch_model.bin in {{hf}}/models--timm--{TAG}/snapshots"),
])
def test_weights_that_cannot_be_used(caches, synth_catalog, weights, flags, named):
    out = caches / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, *TRAIN, *flags,
                     "--weights", weights)
    assert_one_line_error(result, f"--weights {weights}",
                          named.format(torch=caches / "torch" / "hub" / "checkpoints", hf=caches / "hf"))
    assert not out.exists()


def test_a_missing_file_is_downloaded_once_into_the_torch_hub_cache(caches, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    served = caches / "served" / "weights-0123abcd.pth"
    served.parent.mkdir()
    torch.save({"w": torch.ones(2)}, served)
    path = UrlFile(served.as_uri()).fetch("W")
    assert path == caches / "torch" / "hub" / "checkpoints" / served.name
    served.unlink()
    assert UrlFile(served.as_uri()).fetch("W") == path  # from the cache now
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    with pytest.raises(InputError, match=r"--weights W: not in the cache: expected other-1.pth in .*checkpoints "
                                         r"\(downloading http://127.0.0.1:9/other-1.pth failed"):
        UrlFile("http://127.0.0.1:9/other-1.pth").fetch("W")
    assert sorted(p.name for p in path.parent.iterdir()) == [served.name]  # nothing half-written


def test_band_codes_are_read_by_the_weights_sensor():
    assert band_names(["SR_B5", "B2"], OLI) == [("SR_B5", "nir", "nir08"), ("B2", "blue")]
    assert band_names(["B4", "B2"], "ResNet18_Weights.LANDSAT_TM_TOA_MOCO") == [("B4", "nir", "nir08"),
                                                                                ("B2", "green")]
    assert band_names(["B04", "B8a"], "SENTINEL2")[0][1] == "red"
    assert "nir08" in band_names(["B8a"], "SENTINEL2")[0]
    twice = band_names(["B4", "B3", "B2", "B8", "B4", "B3", "B2", "B8"], "Unet_Weights.SENTINEL2_2CLASS_FTW")
    assert input_channels("w", twice, 8, ["NIR", "Red", "B2"], 3) == [3, 0, 2]  # the first of a name, any case
    assert input_channels("w", None, 3, ["a", "b", "c"], 3) == [0, 1, 2]  # unnamed: in order, as many
