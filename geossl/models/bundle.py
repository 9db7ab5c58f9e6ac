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
from geossl.data.normalize import Normalizer
from geossl.errors import InputError
from geossl.io.atomic import atomic_file
from geossl.manifest import ClassDef
from geossl.models.config import ModelConfig
from geossl.models.segmenter import Segmenter
from geossl.versions import Upgrade, upgrade

log = logging.getLogger(__name__)

BUNDLE_KEY = "geossl"
BUNDLE_FORMAT = "geossl-model"
#: The bundle format this geossl writes. A change of shape adds one, with its step in ``_UPGRADES``.
BUNDLE_VERSION = 1
#: ``_UPGRADES[v]`` turns a version ``v`` bundle description into a version ``v + 1`` one (none yet).
_UPGRADES: dict[int, Upgrade] = {}
#: Prefixes of the segmenter's weights and of the strategy's own modules in a training checkpoint (the Lightning
#: task's ``model`` and ``strategy`` attributes).
CHECKPOINT_MODEL, CHECKPOINT_STRATEGY = "model.", "strategy."
#: DWL's pseudo head inside the segmenter's weights, as bundles and checkpoints held it before it became the
#: strategy's own module: ignored when read (prediction never used it).
OLD_PSEUDO_HEAD = "pseudo_head."


class TrainedOn(BaseModel):
    """The labeled area a model learned from: its catalog (by input hash) and the keys of its labeled regions.

    With ``--label-fraction`` training redraws which train regions keep their labels, so the catalog's own
    labeled split is not what the model learned from; ``geossl suggest`` and the report read this record instead.
    ``label_fraction``, ``label_selection`` and ``seed`` say how the regions were drawn (None: the catalog's own).
    """

    model_config = ConfigDict(extra="forbid")

    catalog_hash: str
    labeled: list[str]
    label_fraction: float | None = None
    label_selection: str = "random"
    seed: int = 0


class ModelBundle(BaseModel):
    """What a trained model is: classes, bands, normalisation, patch geometry, model config and strategy.

    Output channel ``i`` of the model is class ``classes[i]``. ``bands`` are the band names of the training data
    (the manifest's); ``source_bands`` the band descriptions of its source files, one list per distinct naming
    (empty in bundles written before they were recorded). A scene named like either is the model's bands.
    ``resolution``, ``crs`` and ``grid_origin`` (a pixel corner ``(x, y)`` of the training data) are its grid.
    ``nodata`` is the training imagery's nodata value: None when it declared none (then an internal mask marked
    the empty pixels and every value was a pixel). Prediction marks a scene's invalid pixels by the scene's own
    nodata or mask; the bundle's nodata only stands in for a scene that declares neither (see
    :func:`geossl.predict.scene.open_scenes`).
    ``trained_on`` is the labeled area it learned from (None in bundles written before it was recorded).
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    format: str = BUNDLE_FORMAT
    version: int = BUNDLE_VERSION
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
    trained_on: TrainedOn | None = None
    metrics: dict[str, Any] = {}
    created: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    geossl_version: str = geossl.__version__

    @property
    def normalizer(self) -> Normalizer:
        """The model's input normalisation: its band statistics and nodata."""
        return Normalizer(tuple(self.mean), tuple(self.std), self.nodata)

    def normalize(self, image: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(bands, h, w)`` raw pixels → float32 ``(x - mean) / std`` and the valid mask ``(h, w)``.

        Pixels the raster's own ``mask`` marks (0), or where any band is nodata (or NaN), are invalid and set to
        0 in every band: :class:`Normalizer`, the normalisation training uses.
        """
        return self.normalizer(image, mask)


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


def upgrade_bundle(data: dict[str, Any], source: str | Path) -> dict[str, Any]:
    """A bundle description (a bundle file's ``geossl`` entry) of any version, brought to :data:`BUNDLE_VERSION`.

    Fields added to version 1 after its first files (``source_bands``, ``grid_origin``, ``trained_on``) read as
    empty: unknown;
    the ``pseudo_head`` of older DWL models is dropped by :class:`ModelConfig`. Another format, or a newer
    version, is an :class:`InputError` naming ``source``.
    """
    if data.get("format", BUNDLE_FORMAT) != BUNDLE_FORMAT:
        raise InputError(source, f"not a geossl checkpoint (format {data.get('format')!r})")
    return upgrade(data, BUNDLE_VERSION, _UPGRADES, source, "model")


def save_bundle(path: str | Path, bundle: ModelBundle, model: Segmenter) -> None:
    """Write a bundle file atomically."""
    payload = {BUNDLE_KEY: bundle.model_dump(mode="json"), "state_dict": model.state_dict()}
    with atomic_file(path) as tmp:
        torch.save(payload, tmp)


def describe_bundle(path: str | Path) -> ModelBundle:
    """A bundle's or checkpoint's description alone: its tensors are mapped, not read (cheap for large models)."""
    path = Path(path)
    return _description(_payload(path, mmap=True), path)


def load_bundle(path: str | Path) -> tuple[ModelBundle, Segmenter]:
    """Load a bundle or a geossl Lightning checkpoint safely (``weights_only=True``)."""
    path = Path(path)
    payload = _payload(path, mmap=False)
    bundle = _description(payload, path)
    model = Segmenter(bundle.model.model_copy(update={"weights": "none"}))
    missing, unexpected = model.load_state_dict(segmenter_state(payload["state_dict"]), strict=False)
    if missing:
        raise InputError(path, f"checkpoint lacks {len(missing)} model tensors (e.g. {missing[0]})")
    if unexpected:
        raise InputError(path, f"checkpoint holds {len(unexpected)} tensors the model does not have "
                               f"(e.g. {unexpected[0]})")
    model.eval()
    return bundle, model


def _payload(path: Path, mmap: bool) -> dict[str, Any]:
    """The saved dictionary (``weights_only``), refused with one line when it is no geossl checkpoint."""
    if not path.is_file():
        raise InputError(path, "checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # noqa: BLE001 - anything torch refuses is not a geossl checkpoint
        raise InputError(path, f"not a geossl checkpoint (torch cannot load it safely: "
                               f"{str(exc).splitlines()[0][:120]})") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get(BUNDLE_KEY), dict) or "state_dict" not in payload:
        raise InputError(path, "not a geossl checkpoint (no geossl model description inside)")
    return payload


def _description(payload: dict[str, Any], path: Path) -> ModelBundle:
    """The payload's model description, upgraded from older versions."""
    try:
        return ModelBundle.model_validate(upgrade_bundle(payload[BUNDLE_KEY], path))
    except ValidationError as exc:
        raise InputError(path, f"damaged geossl checkpoint: {str(exc).splitlines()[0]}") from exc


def segmenter_state(state: dict[str, Any]) -> dict[str, Any]:
    """The segmenter's tensors of a bundle's or a training checkpoint's state dict.

    A checkpoint's are those under ``model.`` (its strategy's modules, under ``strategy.``, are left out); an old
    DWL bundle's or checkpoint's pseudo head is left out too (:data:`OLD_PSEUDO_HEAD`).
    """
    if any(k.startswith(CHECKPOINT_MODEL) for k in state):
        state = {k.removeprefix(CHECKPOINT_MODEL): v for k, v in state.items() if k.startswith(CHECKPOINT_MODEL)}
    return {k: v for k, v in state.items() if not k.startswith(OLD_PSEUDO_HEAD)}
