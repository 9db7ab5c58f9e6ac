"""Versioned file formats (the catalog, the model bundle): reading a file written by an older geossl.

Each format carries an integer ``version``. When its shape changes, the version goes up by one and a step
that turns a file of the previous version (as parsed JSON / plain types) into the new shape is added to the
format's steps; :func:`upgrade` applies the steps in turn, so every older file reads as the current shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geossl.errors import InputError

#: Turns a file of version ``v`` into one of version ``v + 1``.
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]


def upgrade(data: dict[str, Any], current: int, steps: Mapping[int, Upgrade], source: str | Path, what: str
            ) -> dict[str, Any]:
    """``data`` (a ``what`` of any version from 1 to ``current``) brought to version ``current``.

    A file without a version is version 1. A newer or unknown version is an :class:`InputError` naming
    ``source``.
    """
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= current:
        raise InputError(source, f"{what} format version {version!r} is not one this geossl reads (1 to {current}; "
                                 "a newer geossl wrote it?)")
    while version < current:
        data = {**steps[version](data), "version": version + 1}
        version += 1
    return data
