import math
from pathlib import Path

import pytest
import yaml

from geossl.errors import InputError
from geossl.manifest import load_manifest, resolve_inputs

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return {
        "name": "t",
        "classes": [{"id": 1, "name": "A", "color": "#ff0000"}, {"id": 2, "name": "B", "color": "#00ff00"}],
        "imagery": {"paths": ["scene.tif"]},
        "labels": {"rasters": ["labels.tif"]},
    }


def test_shipped_manifests_validate():
    for path in (ROOT / "data_manifests").glob("*.yaml"):
        manifest = load_manifest(path)
        assert manifest.classes and manifest.splits.blocks is not None


def test_missing_field_is_named(tmp_path):
    data = _base()
    del data["imagery"]
    with pytest.raises(InputError, match=r"field 'imagery': required field is missing"):
        load_manifest(_write(tmp_path, data))


@pytest.mark.parametrize(
    ("patch", "pattern"),
    [
        ({"classes": [{"id": "one", "name": "A", "color": "#ff0000"}]}, r"field 'classes\.0\.id'"),
        ({"classes": [{"id": 1, "name": "A", "color": "red"}]}, r"field 'classes\.0\.color'.*#rrggbb"),
        ({"imagery": {"paths": "scene.tif"}}, r"field 'imagery\.paths'"),
        ({"grid": {"crs": "EPSG:999999"}}, r"field 'grid\.crs'.*not a known CRS"),
        ({"ignore_id": 1}, r"ignore_id 1 is also a class id"),
        ({"splits": {"blocks": {"val_fraction": 0.6, "test_fraction": 0.5}}}, r"val_fraction \+ test_fraction"),
        ({"labeld": {"rasters": ["x.tif"]}}, r"field 'labeld': unknown field"),
    ],
)
def test_mistyped_fields_are_named(tmp_path, patch, pattern):
    data = {**_base(), **patch}
    with pytest.raises(InputError, match=pattern):
        load_manifest(_write(tmp_path, data))


def test_paths_resolve_relative_to_manifest_or_data_root(tmp_path):
    (tmp_path / "d").mkdir()
    for name in ("scene.tif", "labels.tif"):
        (tmp_path / "d" / name).write_bytes(b"x")
    manifest_path = _write(tmp_path, _base())
    manifest = load_manifest(manifest_path)
    resolved = resolve_inputs(manifest, manifest_path, tmp_path / "d")
    assert resolved.imagery == [tmp_path / "d" / "scene.tif"]
    with pytest.raises(InputError, match="file not found"):
        resolve_inputs(manifest, manifest_path, None)


def test_path_escaping_data_root_is_refused(tmp_path):
    data = _base()
    data["imagery"]["paths"] = ["../outside.tif"]
    (tmp_path / "root").mkdir()
    manifest_path = _write(tmp_path, data)
    with pytest.raises(InputError, match="escapes the data root"):
        resolve_inputs(load_manifest(manifest_path), manifest_path, tmp_path / "root")


def test_empty_glob_is_refused(tmp_path):
    data = _base()
    data["imagery"]["paths"] = ["scenes/*.tif"]
    manifest_path = _write(tmp_path, data)
    with pytest.raises(InputError, match="no files match"):
        resolve_inputs(load_manifest(manifest_path), manifest_path, None)


def test_imagery_nodata_may_be_nan_but_other_numbers_must_be_finite(tmp_path):
    """Float rasters mark nodata with NaN; every other number of a config is refused when not finite."""
    data = _base()
    data["imagery"]["nodata"] = float("nan")
    nodata = load_manifest(_write(tmp_path, data)).imagery.nodata
    assert nodata is not None and math.isnan(nodata)
    data["imagery"]["nodata"] = 0
    data["splits"] = {"blocks": {"size": float("inf")}}
    with pytest.raises(InputError, match="finite"):
        load_manifest(_write(tmp_path, data))
