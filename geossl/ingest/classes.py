"""Class attributes of vector labels: integer ids, numeric text or class names, mapped to class ids.

GIS tools store a class attribute as an integer, a real, or text (QGIS users often draw polygons into a
``TEXT`` field holding "1".."5" or names such as "Forest"). Every distinct value is mapped once:

* an integer (or a real with no fraction, or text that reads as one, e.g. ``" 3 "``, ``"3.0"``) is a class id;
* other text is a class name, matched to the manifest's names ignoring case and surrounding spaces.

A value that maps to no class of the manifest (nor its ignore id), or an empty value, is refused with one line
that names the file, the attribute and the values.
"""

from __future__ import annotations

import math
from os import PathLike

import numpy as np
import pandas as pd

from geossl.errors import InputError
from geossl.manifest import Manifest

#: At most this many unmatched values are quoted in the error message.
MAX_QUOTED = 10


def _name_key(name: str) -> str:
    return name.strip().casefold()


def _as_number(value: object) -> float | None:
    """The number a value stands for, or None (booleans and non-numeric text are not numbers)."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def class_id_of(value: object, names: dict[str, int], allowed: set[int]) -> int | None:
    """The class id a single attribute value stands for, or None when it matches no class."""
    number = _as_number(value)
    if number is not None:
        if math.isfinite(number) and number.is_integer() and int(number) in allowed:
            return int(number)
        return None
    return names.get(_name_key(str(value)))


def class_ids(values: pd.Series, manifest: Manifest, path: str | PathLike[str], field: str) -> np.ndarray:
    """Map a class attribute to integer class ids (int64), or raise InputError naming the unmatched values."""
    names = {_name_key(c.name): c.id for c in manifest.classes}
    allowed = {*manifest.class_ids, manifest.ignore_id}
    mapping: dict[object, int] = {}
    unmatched: list[str] = []
    for value in values.dropna().unique():
        cid = class_id_of(value, names, allowed)
        if cid is None:
            unmatched.append(repr(value.item() if isinstance(value, np.generic) else value))
        else:
            mapping[value] = cid
    if values.isna().any():
        unmatched.append("empty")
    if unmatched:
        raise InputError(path, _unmatched_message(field, sorted(unmatched), manifest))
    ids: np.ndarray = values.map(mapping).to_numpy(dtype=np.int64)
    return ids


def _unmatched_message(field: str, unmatched: list[str], manifest: Manifest) -> str:
    quoted = ", ".join(unmatched[:MAX_QUOTED])
    if len(unmatched) > MAX_QUOTED:
        quoted += f" and {len(unmatched) - MAX_QUOTED} more"
    classes = ", ".join(f"{c.id} {c.name}" for c in manifest.classes)
    return (f"attribute '{field}' has values that match no class: {quoted} "
            f"(classes: {classes}; ignore id {manifest.ignore_id}; ids, numeric text or names, any case)")
