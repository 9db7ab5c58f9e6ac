"""A layer of a vector file, named as QGIS names it: ``path.gpkg|layername=labels``.

QGIS shows a GeoPackage layer's source as ``PATH|layername=NAME``; the manifest's ``labels.drawn`` takes the
same text (copied from the layer's properties). Without ``|layername=`` a file of one layer is read as is, and
a file of several layers is read at its layer named :data:`LABEL_LAYER` (the layer ``geossl suggest`` writes
for the analyst's labels, beside its suggestions), or refused with the names it holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyogrio
from pyogrio.errors import DataSourceError

from geossl.errors import InputError

#: The layer of drawn labels in the GeoPackage ``geossl suggest`` writes (read by default from files of layers).
LABEL_LAYER = "labels"
#: What separates a file from its layer option in a source (QGIS's URI syntax).
SEPARATOR = "|"
LAYER_OPTION = "layername"


@dataclass(frozen=True)
class LayerSource:
    """A vector file and, when named, the layer in it to read."""

    path: Path
    layer: str | None = None

    def __str__(self) -> str:
        return str(self.path) if self.layer is None else f"{self.path}{SEPARATOR}{LAYER_OPTION}={self.layer}"


def split_source(text: str) -> tuple[str, str | None]:
    """``(file pattern, layer name or None)`` of a source written ``PATTERN`` or ``PATTERN|layername=NAME``."""
    pattern, sep, rest = text.partition(SEPARATOR)
    if not sep:
        return text, None
    key, eq, name = rest.partition("=")
    if key.strip().lower() != LAYER_OPTION or not eq or not name.strip() or SEPARATOR in name:
        raise InputError(text, f"name a layer as PATH{SEPARATOR}{LAYER_OPTION}=NAME (the only option read)")
    return pattern, name.strip()


def layers_of(path: Path) -> list[str]:
    """The names of the vector layers in ``path``."""
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except (DataSourceError, OSError, ValueError) as exc:
        raise InputError(path, f"cannot read vector layers: {str(exc).splitlines()[0]}") from exc


def resolve_layer(source: LayerSource) -> str | None:
    """The layer to read from ``source`` (see the module docstring); None reads the file's only layer."""
    names = layers_of(source.path)
    if source.layer is not None:
        if source.layer not in names:
            raise InputError(str(source), f"has no layer '{source.layer}' (layers: {', '.join(names) or 'none'})")
        return source.layer
    if len(names) <= 1:
        return None
    if LABEL_LAYER in names:
        return LABEL_LAYER
    raise InputError(str(source), f"holds {len(names)} layers ({', '.join(names)}) and none is named '{LABEL_LAYER}'; "
                             f"name one as {source.path}{SEPARATOR}{LAYER_OPTION}=NAME")


def layer_digest(source: LayerSource) -> str:
    """A hash of the layer's content (CRS, fields, features): the same when the rest of its file changes.

    ``geossl suggest --overwrite`` rewrites its GeoPackage and carries the drawn labels over, so the file's size
    and time change while its label layer does not: ingest and the pipeline go by this hash instead.
    """
    layer = resolve_layer(source)
    meta, fids, geometry, values = pyogrio.raw.read(source.path, layer=layer, return_fids=True)
    digest = hashlib.sha256(repr((meta["crs"], list(meta["fields"]))).encode())
    digest.update(fids.tobytes())
    for wkb in geometry:
        digest.update(b"" if wkb is None else wkb)
    for column in values:
        digest.update(repr(column.tolist()).encode())
    return digest.hexdigest()[:16]
