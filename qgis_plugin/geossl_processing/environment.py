"""Which Python runs geossl, and the environment variables it gets (no QGIS here).

The provider's setting names a Python virtual environment with geossl installed (or that environment's Python
itself). By default it is the ``.venv`` of the repository the plugin was built from: ``make qgis-plugin``
writes that repository's folder into :data:`REPOSITORY_FILE` in the zip; run from the source tree, the plugin
finds the repository above its own folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The file of the built plugin that names the repository it was built from.
REPOSITORY_FILE = "repository.txt"
#: The repository's virtual environment (the project's Makefile creates it).
VENV = ".venv"
#: Variables QGIS sets for its own Python, GDAL and PROJ (on Windows and macOS bundles): another Python with its
#: own GDAL and PROJ (geossl's wheels) must not inherit them.
QGIS_ONLY = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PROJ_LIB", "PROJ_DATA", "GDAL_DATA", "GDAL_DRIVER_PATH",
             "GDAL_FILENAME_IS_UTF8", "QT_PLUGIN_PATH")


def repository() -> Path:
    """The repository the plugin belongs to (see the module docstring)."""
    here = Path(__file__).resolve().parent
    named = here / REPOSITORY_FILE
    if named.is_file():
        return Path(named.read_text(encoding="utf-8").strip())
    return here.parents[1]


def default_environment() -> str:
    """The repository's ``.venv``."""
    return str(repository() / VENV)


def python_of(environment: str) -> Path:
    """The Python of ``environment`` (a virtual environment's folder, or a Python executable as is)."""
    path = Path(environment).expanduser()
    if path.is_dir():
        return path / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    return path


def child_environment() -> dict:
    """The environment variables geossl runs with: QGIS's, without :data:`QGIS_ONLY`, and Python's output unbuffered."""
    variables = {k: v for k, v in os.environ.items() if k not in QGIS_ONLY}
    variables["PYTHONUNBUFFERED"] = "1"
    variables["PYTHONIOENCODING"] = "utf-8"
    return variables
