"""The segmenter: encoder weights from a local file only, decoder width; bundles of older versions."""

import pytest
import torch
from pydantic import ValidationError

from geossl.errors import InputError
from geossl.models import ModelConfig, Segmenter

TINY = {"encoder": "tu-test_resnet", "in_channels": 4, "num_classes": 3, "decoder_channels": [16, 8, 8, 8, 8]}


def test_encoder_weights_load_from_a_local_file(tmp_path):
    source = Segmenter(ModelConfig(**TINY))
    path = tmp_path / "encoder.pt"
    torch.save({"state_dict": source.net.encoder.state_dict()}, path)
    loaded = Segmenter(ModelConfig(**TINY, weights=str(path)))
    for (name, a), (_, b) in zip(source.net.encoder.state_dict().items(), loaded.net.encoder.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name
    fresh = Segmenter(ModelConfig(**TINY))
    assert not all(torch.equal(a, b) for a, b in zip(source.net.encoder.state_dict().values(),
                                                     fresh.net.encoder.state_dict().values(), strict=True))


def test_bad_weights_and_encoders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Segmenter(ModelConfig(**TINY, weights=str(tmp_path / "missing.pt")))
    junk = tmp_path / "junk.pt"
    torch.save({"something": torch.zeros(3)}, junk)
    with pytest.raises(InputError, match="no tensor"):
        Segmenter(ModelConfig(**TINY, weights=str(junk)))
    other = tmp_path / "other.pt"
    torch.save(Segmenter(ModelConfig(**{**TINY, "in_channels": 6})).net.encoder.state_dict(), other)
    with pytest.raises(InputError, match="do not fit"):
        Segmenter(ModelConfig(**TINY, weights=str(other)))
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
