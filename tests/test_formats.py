"""File formats with a version: catalogs and model bundles written by an older geossl still read."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from geossl.catalog import CATALOG_VERSION, Catalog, load_catalog
from geossl.data.normalize import Normalizer
from geossl.data.regions import region_class_counts, split_regions
from geossl.errors import InputError
from geossl.ingest.run import IngestOptions, ingest
from geossl.manifest import Split
from geossl.models import describe_bundle, load_bundle
from geossl.synth import SynthConfig, write_scene
from tests.predict_support import make_bundle, save_checkpoint

#: ``catalog.json`` and the label COG written by geossl 0.1.0 before the catalog was typed (format version 1),
#: from ``geossl synth --size 64 --tile 16 SRC`` and ``geossl ingest SRC/manifest.yaml --out catalog_v1``.
CATALOG_V1 = Path(__file__).parent / "data" / "catalog_v1"


def test_a_version_1_catalog_loads_as_the_current_format():
    raw = json.loads((CATALOG_V1 / "catalog.json").read_text())
    assert raw["version"] == 1 and "crs" in raw["splits"]
    catalog = load_catalog(CATALOG_V1)
    assert catalog.version == CATALOG_VERSION
    assert [s.model_dump() for s in catalog.band_stats] == raw["band_stats"]
    assert [s.band_stats[0].p98 for s in catalog.scenes] == [s["band_stats"][0]["p98"] for s in raw["scenes"]]
    assert catalog.manifest.splits.blocks is not None and catalog.manifest.splits.blocks.rows == 4
    regions = split_regions(catalog)
    assert [(r.key, r.split.value) for r in regions] == [
        (f"r{f['properties']['row']}c{f['properties']['col']}", f["properties"]["split"])
        for f in raw["splits"]["features"]]
    assert {r.split for r in regions} == set(Split)
    counts = region_class_counts([CATALOG_V1 / catalog.scenes[0].labels], regions, [c.id for c in catalog.classes])
    assert sum(int(c.sum()) for c in counts.values()) == sum(raw["class_counts"].values())
    norm = Normalizer.from_catalog(catalog)
    assert norm.mean == tuple(s["mean"] for s in raw["band_stats"]) and norm.nodata == raw["nodata"]


def test_this_geossl_ingests_what_version_1_described(tmp_path):
    """Same inputs, same catalog: the version-1 file, read today, equals what this geossl writes.

    Left out: the time and hash of the run, the inputs' paths (they lie elsewhere) and the COGs' sizes (they
    follow GDAL's version). Fields added since version 1 was written read as their defaults.
    """
    src = tmp_path / "src"
    write_scene(src, SynthConfig(size=64, tile=16))
    ingest(src / "manifest.yaml", IngestOptions(out=tmp_path / "out", workers=1, quiet=True))
    new, old = load_catalog(tmp_path / "out"), load_catalog(CATALOG_V1)
    assert json.loads((tmp_path / "out" / "catalog.json").read_text())["version"] == CATALOG_VERSION

    def comparable(catalog: Catalog) -> dict:
        data = catalog.model_dump(mode="json", exclude={"created", "input_hash", "outputs"})
        for scene in data["scenes"]:
            scene.pop("source")
        return data

    assert comparable(new) == comparable(old)
    assert (tmp_path / "out" / "splits.geojson").read_text() == (CATALOG_V1 / "splits.geojson").read_text()


def test_a_catalog_round_trips_and_a_newer_one_is_refused(tmp_path):
    catalog = load_catalog(CATALOG_V1)
    catalog.write(tmp_path)
    assert Catalog.model_validate_json((tmp_path / "catalog.json").read_text()) == catalog
    data = json.loads((tmp_path / "catalog.json").read_text())
    (tmp_path / "catalog.json").write_text(json.dumps({**data, "version": CATALOG_VERSION + 1}))
    with pytest.raises(InputError, match=f"catalog format version {CATALOG_VERSION + 1} is not one this geossl "
                                         "reads"):
        load_catalog(tmp_path)


def test_a_bundle_in_the_first_shape_loads(tmp_path):
    """Version 1 as first written: no source band names, no grid origin."""
    bundle = make_bundle()
    state = torch.load(save_checkpoint(tmp_path / "new.pt", bundle), weights_only=True)["state_dict"]
    first = {k: v for k, v in bundle.model_dump(mode="json").items() if k not in ("source_bands", "grid_origin")}
    torch.save({"geossl": first, "state_dict": state}, tmp_path / "old.pt")
    loaded, model = load_bundle(tmp_path / "old.pt")
    assert describe_bundle(tmp_path / "old.pt") == loaded
    assert loaded.source_bands == [] and loaded.grid_origin == [] and loaded.version == 1
    assert loaded.model_dump(exclude={"created"}) == bundle.model_dump(exclude={"created"})
    x = torch.from_numpy(loaded.normalize(np.full((4, 64, 64), 900, dtype=np.uint16))[0])[None]
    assert model(x).shape == (1, len(bundle.classes), 64, 64)


@pytest.mark.parametrize(("change", "message"), [
    ({"version": 2}, "model format version 2 is not one this geossl reads"),
    ({"version": "1"}, "model format version '1' is not one this geossl reads"),
    ({"format": "other-model"}, "not a geossl checkpoint \\(format 'other-model'\\)"),
])
def test_a_bundle_of_another_format_or_a_newer_version_is_refused(tmp_path, change, message):
    bundle = make_bundle()
    state = torch.load(save_checkpoint(tmp_path / "new.pt", bundle), weights_only=True)["state_dict"]
    torch.save({"geossl": {**bundle.model_dump(mode="json"), **change}, "state_dict": state}, tmp_path / "x.pt")
    for read in (load_bundle, describe_bundle):
        with pytest.raises(InputError, match=message):
            read(tmp_path / "x.pt")


def test_a_file_that_is_no_bundle_is_refused_by_the_description_reader_too(tmp_path):
    (tmp_path / "notes.pt").write_text("not a model")
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(InputError, match="torch cannot load it safely"):
        describe_bundle(tmp_path / "notes.pt")
    with pytest.raises(InputError, match="no geossl model description inside"):
        describe_bundle(tmp_path / "plain.pt")
    with pytest.raises(InputError, match="checkpoint not found"):
        describe_bundle(tmp_path / "missing.pt")
