"""Crossview's cost options: how many images each step encodes and decodes, and which terms it keeps."""

import pytest
import torch

from geossl.models import ModelConfig, Segmenter
from geossl.ssl.crossview import CrossView, CrossViewConfig

N_L, N_U, S = 2, 4, 32


def step(params: dict) -> tuple[dict[str, list[int]], dict[str, torch.Tensor]]:
    """One crossview step on random data: the batch sizes through the encoder and the decoder, and the terms."""
    torch.manual_seed(0)
    model = Segmenter(ModelConfig(encoder="tu-test_resnet", in_channels=3, num_classes=3,
                                  decoder_channels=[16, 8, 8, 8, 8]))
    seen: dict[str, list[int]] = {"features": [], "decode": []}
    for name in seen:
        inner = getattr(model, name)

        def counted(x, _inner=inner, _name=name):
            seen[_name].append(x.shape[0] if isinstance(x, torch.Tensor) else x[0].shape[0])
            return _inner(x)

        setattr(model, name, counted)
    batch_l = {"image": torch.randn(N_L, 3, S, S), "mask": torch.randint(0, 3, (N_L, S, S))}
    batch_u = {"image": torch.randn(N_U, 3, S, S), "valid": torch.ones(N_U, S, S, dtype=torch.bool),
               "partner": torch.tensor([1, 0, 3, 2]), "origin": torch.tensor([[0, 0], [0, 8], [5, 5], [13, 5]]),
               "geom": torch.zeros(N_U, 2, dtype=torch.long)}
    out = CrossView(model, CrossViewConfig(threshold=0.0, **params)).training_step(
        batch_l, batch_u, 0, 10, torch.Generator().manual_seed(1))
    out.loss.backward()
    assert torch.isfinite(out.loss)
    return seen, out.terms


@pytest.mark.parametrize("params, encoded, decoded, terms", [
    ({"strong_views": 2, "single_stream": False}, N_L + 3 * N_U, N_L + 7 * N_U, {"loss_s2", "loss_dkd"}),
    ({}, N_L + 2 * N_U, N_L + 4 * N_U, {"loss_dkd"}),  # the default: one strong view, one stream
    ({"strong_views": 1, "single_stream": True}, N_L + 2 * N_U, N_L + 4 * N_U, {"loss_dkd"}),
    ({"strong_views": 2, "single_stream": True}, N_L + 3 * N_U, N_L + 5 * N_U, {"loss_s2", "loss_dkd"}),
    ({"strong_views": 1, "single_stream": True, "strong_streams": False}, N_L + 2 * N_U, N_L + 3 * N_U, set()),
])
def test_cost_options_cut_the_images_a_step_runs_through_the_network(params, encoded, decoded, terms):
    seen, logged = step(params)
    assert sum(seen["features"]) == encoded and sum(seen["decode"]) == decoded
    always = {"loss_s", "loss_s1", "loss_tkd", "loss_overlap", "overlap_share"}
    assert set(logged) == always | terms
    assert float(logged["overlap_share"]) > 0


def test_defaults_are_the_cheap_variant_with_adaptive_thresholds_measured_best():
    cfg = CrossViewConfig()
    assert (cfg.strong_views, cfg.single_stream, cfg.strong_streams, cfg.spatial) == (1, True, True, True)
    assert cfg.adaptive_threshold
