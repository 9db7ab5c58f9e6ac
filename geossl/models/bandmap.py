"""Pretrained weights' bands matched to the imagery's by name, and their first convolution adapted to them.

Weights name their bands by a sensor's codes (torchgeo: ``SR_B2``, ``B8A``, ``R``); the manifest names the
imagery's bands by common name (``blue``, ``nir``). :data:`SENSOR_BANDS` says which common names each code of a
sensor stands for; a code also matches itself (``B2`` in the manifest matches ``B2``, whatever the sensor).

The input convolution is rebuilt channel by channel: each imagery band takes the kernel of the first weights band
of its name; a band the weights lack starts from a zero kernel, so the network first computes what it computed on
the bands it knows, and learns the new band's part in training. Weights bands the imagery lacks are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from torch import Tensor

from geossl.errors import InputError

_LANDSAT_TM = {"B1": ("blue",), "B2": ("green",), "B3": ("red",), "B4": ("nir", "nir08"), "B5": ("swir1", "swir16"),
               "B6": ("thermal", "lwir"), "B6_VCID_1": ("thermal", "lwir"), "B6_VCID_2": ("thermal", "lwir"),
               "B7": ("swir2", "swir22"), "B8": ("pan",)}
_LANDSAT_OLI = {"B1": ("coastal",), "B2": ("blue",), "B3": ("green",), "B4": ("red",), "B5": ("nir", "nir08"),
                "B6": ("swir1", "swir16"), "B7": ("swir2", "swir22"), "B8": ("pan",), "B9": ("cirrus",),
                "B10": ("thermal", "lwir11", "tir1"), "B11": ("lwir12", "tir2")}
_SENTINEL2 = {"B1": ("coastal",), "B2": ("blue",), "B3": ("green",), "B4": ("red",),
              "B5": ("rededge1", "rededge071"), "B6": ("rededge2", "rededge075"), "B7": ("rededge3", "rededge078"),
              "B8": ("nir",), "B8A": ("nir08", "rededge4", "nir_narrow"), "B9": ("watervapor", "nir09"),
              "B10": ("cirrus",), "B11": ("swir1", "swir16"), "B12": ("swir2", "swir22")}
_RGB = {"R": ("red",), "G": ("green",), "B": ("blue",)}

#: The common names each band code stands for, by the sensor a weights name mentions (its first such word).
SENSOR_BANDS: dict[str, dict[str, tuple[str, ...]]] = {
    "LANDSAT_TM": _LANDSAT_TM, "LANDSAT_ETM": _LANDSAT_TM, "LANDSAT_OLI": _LANDSAT_OLI, "SENTINEL2": _SENTINEL2,
}


def band_names(codes: Sequence[str], weights_name: str) -> list[tuple[str, ...]]:
    """The names each of a weights file's band ``codes`` answers to (the code itself first), in channel order.

    The sensor is the key of :data:`SENSOR_BANDS` that ``weights_name`` holds; ``R``/``G``/``B`` need none.
    """
    sensor = next((SENSOR_BANDS[key] for key in SENSOR_BANDS if key in weights_name.upper()), {})
    names = []
    for code in codes:
        key = re.sub(r"^B0(\d)", r"B\1", code.upper().removeprefix("SR_"))
        names.append((code, *(sensor.get(key) or _RGB.get(key) or ())))
    return names


def input_channels(where: str, weights: Sequence[tuple[str, ...]] | None, weights_in: int,
                   bands: Sequence[str] | None, model_in: int) -> list[int | None]:
    """For each of the model's input bands, the weights channel that feeds it (None: a zero kernel).

    ``weights``: :func:`band_names` of the weights' ``weights_in`` channels (None: they do not name them);
    ``bands``: the imagery's band names (None: unknown). Unnamed bands must agree in number and are taken in
    order. :class:`InputError` at ``where`` when the bands cannot be matched.
    """
    if bands is None and weights_in != model_in:
        raise InputError(where, f"weights for {weights_in} bands, but the model takes {model_in} (the imagery's bands "
                                "are not named, so they cannot be matched)")
    if weights is None and weights_in != model_in:
        raise InputError(where, f"weights for {weights_in} bands they do not name, but the imagery has {model_in}, "
                                "so they cannot be matched by name")
    if bands is None or weights is None:
        return list(range(model_in))
    lowered = [[name.lower() for name in names] for names in weights]
    channels = [next((j for j, names in enumerate(lowered) if band.lower() in names), None) for band in bands]
    if all(j is None for j in channels):
        raise InputError(where, f"none of the imagery's bands ({', '.join(bands)}) is among the weights' bands "
                                f"({', '.join(names[0] for names in weights)}); name the manifest's imagery bands "
                                "by common name (blue, green, red, nir, swir1...)")
    return channels


def adapt_input_weight(weight: Tensor, channels: Sequence[int | None]) -> Tensor:
    """A convolution kernel ``(out, in, ...)`` rebuilt for the imagery's bands: channel ``i`` from ``channels[i]``."""
    adapted = torch.zeros((weight.shape[0], len(channels), *weight.shape[2:]), dtype=weight.dtype)
    for i, j in enumerate(channels):
        if j is not None:
            adapted[:, i] = weight[:, j]
    return adapted
