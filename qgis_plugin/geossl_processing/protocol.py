"""What the plugin knows of geossl's command line and outputs (no QGIS here: geossl's own tests check it).

geossl runs as ``PYTHON -m geossl.cli --progress COMMAND ...``: on stderr, progress lines start with
:data:`PROGRESS_PREFIX` (``geossl-progress: PERCENT WHAT``), a refusal is one line starting with one of
:data:`ERROR_PREFIXES`, everything else is logging; on stdout, each command prints what it wrote, one path a line.
"""

from __future__ import annotations

import re

#: geossl's flag that turns its progress lines on (a flag of the ``geossl`` group, before the command).
PROGRESS_FLAG = "--progress"
#: Starts a progress line (geossl.progress.PREFIX).
PROGRESS_PREFIX = "geossl-progress:"
#: Start the one line geossl ends with when it refuses (exit 2) or fails (exit 1).
ERROR_PREFIXES = ("Error: ", "Internal error: ")
#: The module that runs geossl's command line.
CLI_MODULE = "geossl.cli"
#: The layer of drawn labels in geossl suggest's GeoPackage (geossl.io.layers.LABEL_LAYER).
LABEL_LAYER = "labels"

_PROGRESS = re.compile(r"^" + re.escape(PROGRESS_PREFIX) + r" (\d+(?:\.\d+)?) (.*)$")


def parse_progress(line: str):
    """``(percent, what)`` of a progress line, or None for any other line."""
    match = _PROGRESS.match(line)
    return None if match is None else (float(match.group(1)), match.group(2))


def is_error(line: str) -> bool:
    """True for geossl's one line of refusal or failure."""
    return line.startswith(ERROR_PREFIXES)
