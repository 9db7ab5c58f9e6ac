"""The segmenter: encoder weights from a `geossl pretrain` file, strictly (hub ones: test_pretrained); decoder width."""

import pytest
import torch
from pydantic import ValidationError

from geossl.errors import InputError
from geossl.models import ModelConfig, Segmenter
from geossl.models.weights import EncoderMeta, save_encoder_weights

TINY = {"encoder": "tu-test_resnet", "in_channels": 4, "num_classes": 3, "decoder_channels": [16, 8, 8, 8, 8]}
BANDS = ["blue", "green", "red", "nir"]


def save_weights(path, model, **meta):
    """A weights file of ``model``'s encoder, for TINY's encoder and bands unless ``meta`` says otherwise."""
    fields = {"encoder": TINY["encoder"], "in_channels": TINY["in_channels"], "bands": BANDS, "method": "moco",
              "steps": 1, "patch_size": 64, **meta}
    save_encoder_weights(path, EncoderMeta(**fields), model.net.encoder.state_dict())
    return path


def test_encoder_weights_load_from_a_local_file(tmp_path):
    source = Segmenter(ModelConfig(**TINY))
    path = save_weights(tmp_path / "encoder.pt", source)
    loaded = Segmenter(ModelConfig(**TINY, weights=str(path)), BANDS)
    for (name, a), (_, b) in zip(source.net.encoder.state_dict().items(), loaded.net.encoder.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    fresh = Segmenter(ModelConfig(**TINY))
    assert not all(torch.equal(a, b) for a, b in zip(source.net.encoder.state_dict().values(),
                                                     fresh.net.encoder.state_dict().values(), strict=True))


def test_bad_weights_and_encoders_are_input_errors(tmp_path):
    model = Segmenter(ModelConfig(**TINY))
    with pytest.raises(InputError, match="not found"):
        Segmenter(ModelConfig(**TINY, weights=str(tmp_path / "missing.pt")))
    raw = tmp_path / "raw.pt"
    torch.save({"state_dict": model.net.encoder.state_dict()}, raw)  # no metadata: nothing says what it fits
    with pytest.raises(InputError, match="not a geossl encoder weights file"):
        Segmenter(ModelConfig(**TINY, weights=str(raw)))
    other = save_weights(tmp_path / "other.pt", model, encoder="tu-resnet18")
    with pytest.raises(InputError, match="weights of encoder tu-resnet18, but the model uses tu-test_resnet"):
        Segmenter(ModelConfig(**TINY, weights=str(other)))
    six = save_weights(tmp_path / "six.pt", Segmenter(ModelConfig(**{**TINY, "in_channels": 6})), in_channels=6)
    with pytest.raises(InputError, match="weights for 6 bands, but the imagery has 4"):
        Segmenter(ModelConfig(**TINY, weights=str(six)))
    renamed = save_weights(tmp_path / "renamed.pt", model, bands=["b1", "b2", "b3", "b4"])
    Segmenter(ModelConfig(**TINY, weights=str(renamed)))  # band names unknown to the caller: not checked
    with pytest.raises(InputError, match="weights for bands"):
        Segmenter(ModelConfig(**TINY, weights=str(renamed)), BANDS)
    lying = save_weights(tmp_path / "lying.pt", Segmenter(ModelConfig(**{**TINY, "in_channels": 6})))
    with pytest.raises(InputError, match="do not fit encoder tu-test_resnet: 0 tensor.*1 of another shape"):
        Segmenter(ModelConfig(**TINY, weights=str(lying)))
    with pytest.raises(InputError, match="--encoder"):
        Segmenter(ModelConfig(**{**TINY, "encoder": "tu-not_a_model"}))


def test_decoder_width():
    with pytest.raises(ValidationError, match="takes 5"):
        ModelConfig(**{**TINY, "decoder_channels": [16, 8]})
    deeplab = Segmenter(ModelConfig(**{**TINY, "arch": "deeplabv3plus", "decoder_channels": [32]}))
    x = torch.zeros(2, 4, 64, 64)
    decoded = deeplab.decode(deeplab.features(x))
    assert decoded.shape[1] == 32 and deeplab.head(decoded).shape == (2, 3, 64, 64)
    assert not any(k.startswith("pseudo") for k in deeplab.state_dict())
