"""Shared fixtures: a small synthetic scene, the Zion data (skipped when absent), a CLI runner."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from geossl.cli import main
from geossl.synth import SynthConfig, write_scene

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GEOSSL_SHARED_DATA", ROOT.parent / "shared" / "data"))
ZION = SHARED_DATA / "zion"


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 512 x 512 synthetic scene (4 bands, tiles of 128) with labels and manifest."""
    out = tmp_path_factory.mktemp("synth")
    write_scene(out, SynthConfig(size=512, tile=128, seed=3))
    return out


@pytest.fixture(scope="session")
def zion_root() -> Path:
    """The shared data root holding zion/; the test is skipped when it is absent."""
    if not (ZION / "landsat8_zion_20150818_B2B3B4B5.tif").is_file():
        pytest.skip(f"Zion data not found under {ZION}")
    return SHARED_DATA


def run_cli(*args: str) -> Result:
    """Run ``geossl ARGS`` in-process and return click's result (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, ["-q", *[str(a) for a in args]], catch_exceptions=False)


@pytest.fixture(scope="session")
def synth_catalog(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic scene ingested with data_manifests/synthetic.yaml (4 x 4 blocks): the catalog folder."""
    from geossl.ingest.run import IngestOptions, ingest

    out = tmp_path_factory.mktemp("synth_catalog") / "catalog"
    ingest(ROOT / "data_manifests" / "synthetic.yaml", IngestOptions(out=out, data_root=synth_dir, workers=1,
                                                                      quiet=True))
    return out


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in: chmod 555, or (as root, which ignores modes) /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    try:
        tempfile.mkdtemp(dir="/sys")
    except OSError:
        return Path("/sys")
    pytest.skip("no folder that root cannot write to")
