"""The kept share of a reference model's prediction under each strong-view augmentation (geossl.ssl.agreement)."""

from __future__ import annotations

import numpy as np
import torch

from geossl.data.views import ViewConfig
from geossl.ssl.agreement import STRONG, view_agreement


def sign_of_first_band(x: torch.Tensor) -> torch.Tensor:
    """Class 1 where band 0 is above 0, class 0 elsewhere (ties go to class 0)."""
    return torch.cat([torch.zeros_like(x[:, :1]), x[:, :1]], dim=1)


def _batch(bands: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.linspace(-2, 2, 8 * 16 * 16).reshape(8, 1, 16, 16).repeat(1, bands, 1, 1)
    return image, torch.ones(8, 16, 16, dtype=torch.bool)


def test_dropping_the_only_band_loses_every_positive_pixel_and_keeps_the_rest():
    image, valid = _batch()
    views = ViewConfig(kind="multispectral").resolved()
    agreement = view_agreement(sign_of_first_band, image, valid, views, 2, torch.Generator().manual_seed(0),
                               ("band_drop",))
    assert agreement.predicted["band_drop"].tolist() == [1024, 1024]
    assert np.allclose(agreement.share("band_drop"), [1.0, 0.0])
    assert agreement.overall("band_drop") == 0.5


def test_views_that_change_nothing_keep_everything_and_strong_jitter_keeps_less():
    image, valid = _batch()
    still = ViewConfig(kind="rgb", brightness=0.0, contrast=0.0, blur_prob=0.0, band_mix_prob=0.0).resolved()
    g = torch.Generator().manual_seed(0)
    assert np.allclose(view_agreement(sign_of_first_band, image, valid, still, 2, g, ("jitter", STRONG))
                       .share(STRONG), 1.0)
    mild = ViewConfig(kind="multispectral").resolved()
    strong = ViewConfig(kind="rgb", brightness=0.9).resolved()
    kept = [view_agreement(sign_of_first_band, image, valid, v, 2, torch.Generator().manual_seed(1), ("jitter",))
            .overall("jitter") for v in (mild, strong)]
    assert 1.0 > kept[0] > kept[1]


def test_invalid_pixels_are_not_counted_and_an_unpredicted_class_is_nan():
    image, valid = _batch()
    image = image.abs()  # class 1 everywhere but the zero pixels
    valid[:4] = False
    agreement = view_agreement(lambda x: torch.cat([x[:, :1], torch.zeros_like(x[:, :1])], 1) * -1 + 1e-3,
                               image, valid, ViewConfig().resolved(), 3, torch.Generator().manual_seed(0), ("blur",))
    assert agreement.predicted["blur"].sum() == 4 * 16 * 16
    assert np.isnan(agreement.share("blur")[2])


def test_band_kinds_resolve_from_the_band_names():
    assert ViewConfig().resolved(["red", "green", "blue"]).kind == "rgb"
    assert ViewConfig().resolved(["blue", "green", "red", "nir"]).kind == "multispectral"
    rgb = ViewConfig(brightness=0.2).resolved(["Red", "Green", "Blue"])
    assert (rgb.brightness, rgb.contrast, rgb.band_drop_prob, rgb.band_mix_prob) == (0.2, 0.3, 0.0, 0.0)
    ms = ViewConfig().resolved(["b2", "b3"])
    assert (ms.brightness, ms.contrast, ms.band_drop_prob, ms.band_mix_prob) == (0.1, 0.1, 0.0, 0.0)
