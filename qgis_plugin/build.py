"""Build the QGIS plugin zip (``make qgis-plugin``): ``geossl_processing/`` and the repository it belongs to.

QGIS installs a plugin from a zip holding its folder (Plugins › Manage and Install Plugins › Install from ZIP).
The zip also holds ``repository.txt``, this repository's folder, so that the plugin runs geossl from this
repository's ``.venv`` by default (see ``geossl_processing/environment.py``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "geossl_processing"


def _repository_file() -> str:
    """The plugin's name of the file that names its repository (read from the plugin, not imported as it)."""
    spec = importlib.util.spec_from_file_location("_geossl_plugin_environment", PLUGIN / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.REPOSITORY_FILE)


REPOSITORY_FILE = _repository_file()


def build(out: Path, repository: Path) -> Path:
    """Write the zip to ``out`` (a temporary name renamed into place); return ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(PLUGIN.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.name != REPOSITORY_FILE:
                archive.write(path, f"{PLUGIN.name}/{path.relative_to(PLUGIN).as_posix()}")
        archive.writestr(f"{PLUGIN.name}/{REPOSITORY_FILE}", f"{repository}\n")
    os.replace(partial, out)
    return out


def main() -> None:
    """``python qgis_plugin/build.py [--out dist/geossl_processing.zip]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE.parent / "dist" / f"{PLUGIN.name}.zip")
    parser.add_argument("--repository", type=Path, default=HERE.parent)
    args = parser.parse_args()
    print(build(args.out.absolute(), args.repository.absolute()))


if __name__ == "__main__":
    main()
