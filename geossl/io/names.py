"""Names of outputs derived from input files."""

from __future__ import annotations

import re
from pathlib import Path

#: The metrics file ``geossl evaluate`` writes into its output folder (and ``geossl train`` beside its model).
METRICS_FILE = "metrics.json"


def scene_ids(paths: list[Path]) -> list[str]:
    """Output names of the scenes: the file stem (unsafe characters as ``_``), made unique with ``-2``, ``-3``..."""
    ids: list[str] = []
    for p in paths:
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", p.stem)
        name, n = base, 1
        while name in ids:
            n += 1
            name = f"{base}-{n}"
        ids.append(name)
    return ids
