"""Self-describing model bundles: everything prediction needs, in one file loadable with ``weights_only``.

A bundle file is a ``torch.save``d dict of plain types and tensors::

    {"geossl": <ModelBundle as a dict>, "state_dict": <Segmenter state dict>}

Lightning checkpoints written by ``geossl train`` carry the same two keys (the ``geossl`` entry is added on
save; the segmenter's weights under ``model.``, the strategy's own modules under ``strategy.``), so either can be
given to ``geossl predict``: only the segmenter is read.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rasterio.errors import RasterioError

import geossl
from geossl.errors import InputError
from geossl.io.atomic import atomic_file
from geossl.manifest import ClassDef
from geossl.models.config import ModelConfig
from geossl.models.segmenter import Segmenter

log = logging.getLogger(__name__)

BUNDLE_KEY = "geossl"
#: Prefixes of the segmenter's weights and of the strategy's own modules in a training checkpoint (the Lightning
#: task's ``model`` and ``strategy`` attributes).
CHECKPOINT_MODEL, CHECKPOINT_STRATEGY = "model.", "strategy."
#: DWL's pseudo head inside the segmenter's weights, as bundles and checkpoints held it before it became the
#: strategy's own module: ignored when read (prediction never used it).
OLD_PSEUDO_HEAD = "pseudo_head."


class ModelBundle(BaseModel):
    """What a trained model is: classes, bands, normalisation, patch geometry, model config and strategy.

    Output channel ``i`` of the model is class ``classes[i]``. ``bands`` are the band names of the training data
    (the manifest's); ``source_bands`` the band descriptions of its source files, one list per distinct naming
    (empty in bundles written before they were recorded). A scene named like either is the model's bands.
    ``resolution``, ``crs`` and ``grid_origin`` (a pixel corner ``(x, y)`` of the training data) are its grid.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format: str = "geossl-model"
    version: int = 1
    classes: list[ClassDef]
    ignore_id: int = 0
    bands: list[str]
    source_bands: list[list[str]] = []
    mean: list[float]
    std: list[float]
    nodata: float | None = None
    patch_size: int = Field(ge=32)
    overlap: int = Field(ge=0)
    resolution: list[float] = []
    crs: str | None = None
    grid_origin: list[float] = []
    model: ModelConfig
    strategy: str = "supervised"
    metrics: dict[str, Any] = {}
    created: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    geossl_version: str = geossl.__version__

    def normalize(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(bands, h, w)`` raw pixels → float32 ``(x - mean) / std`` and the valid mask ``(h, w)``.

        Pixels where any band is nodata (or NaN) are invalid and set to 0 in every band.
        """
        x = image.astype(np.float32)
        valid = np.ones(image.shape[1:], dtype=bool)
        if self.nodata is not None and not np.isnan(self.nodata):
            valid &= ~(image == self.nodata).any(axis=0)
        valid &= np.isfinite(x).all(axis=0)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        x = (x - mean) / np.maximum(std, 1e-6)
        x[:, ~valid] = 0.0
        return x, valid


def described_bands(paths: Iterable[Path]) -> list[list[str]]:
    """The distinct band descriptions of the rasters at ``paths`` whose bands are all named.

    A file that cannot be opened (moved since it was ingested) is skipped: it only adds a naming to accept.
    """
    namings: list[list[str]] = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                names = [(d or "").strip() for d in src.descriptions]
        except RasterioError as exc:
            log.debug("%s: band descriptions not read (%s)", path, exc)
            continue
        if all(names) and names not in namings:
            namings.append(names)
    return namings


def save_bundle(path: str | Path, bundle: ModelBundle, model: Segmenter) -> None:
    """Write a bundle file atomically."""
    payload = {BUNDLE_KEY: bundle.model_dump(mode="json"), "state_dict": model.state_dict()}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


def load_bundle(path: str | Path) -> tuple[ModelBundle, Segmenter]:
    """Load a bundle or a geossl Lightning checkpoint safely (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything torch refuses is not a geossl checkpoint
        raise InputError(path, f"not a geossl checkpoint (torch cannot load it safely: "
                               f"{str(exc).splitlines()[0][:120]})") from exc
    if not isinstance(payload, dict) or BUNDLE_KEY not in payload or "state_dict" not in payload:
        raise InputError(path, "not a geossl checkpoint (no geossl model description inside)")
    try:
        bundle = ModelBundle.model_validate(payload[BUNDLE_KEY])
    except ValidationError as exc:
        raise InputError(path, f"damaged geossl checkpoint: {str(exc).splitlines()[0]}") from exc
    model = Segmenter(bundle.model.model_copy(update={"weights": "none"}))
    missing, unexpected = model.load_state_dict(segmenter_state(payload["state_dict"]), strict=False)
    if missing:
        raise InputError(path, f"checkpoint lacks {len(missing)} model tensors (e.g. {missing[0]})")
    if unexpected:
        raise InputError(path, f"checkpoint holds {len(unexpected)} tensors the model does not have "
                               f"(e.g. {unexpected[0]})")
    model.eval()
    return bundle, model


def segmenter_state(state: dict[str, Any]) -> dict[str, Any]:
    """The segmenter's tensors of a bundle's or a training checkpoint's state dict.

    A checkpoint's are those under ``model.`` (its strategy's modules, under ``strategy.``, are left out); an old
    DWL bundle's or checkpoint's pseudo head is left out too (:data:`OLD_PSEUDO_HEAD`).
    """
    if any(k.startswith(CHECKPOINT_MODEL) for k in state):
        state = {k.removeprefix(CHECKPOINT_MODEL): v for k, v in state.items() if k.startswith(CHECKPOINT_MODEL)}
    return {k: v for k, v in state.items() if not k.startswith(OLD_PSEUDO_HEAD)}
