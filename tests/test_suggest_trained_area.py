"""``geossl suggest`` measures against the labeled area the model was trained on, not the catalog's own split.

With ``--label-fraction`` training redraws which train blocks keep their labels; the bundle records them and
suggest, the report and the labelling-loop bench use that record (issue 25, part 1).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import shapely
import torch
import yaml

from geossl.catalog import load_catalog
from geossl.data.module import counted_plan, plan_splits
from geossl.data.regions import split_regions
from geossl.manifest import Split
from geossl.models import load_bundle
from geossl.train.inputs import trained_regions
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
TINY = {"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8], "patch_size": 64, "batch_size": 2,
        "steps_per_epoch": 4, "threads": 1}
REDRAW = ("--label-fraction", "0.5", "--label-selection", "cover_classes", "--seed", "1")


@pytest.fixture(scope="module")
def redrawn(synth_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model trained for 2 steps on labels redrawn with ``--label-fraction``."""
    folder = tmp_path_factory.mktemp("redrawn")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", folder / "run", "--config",
                     folder / "tiny.yaml", "--max-steps", "2", *REDRAW)
    assert result.exit_code == 0, result.output
    return folder / "run" / "model.pt"


def _labeled_keys(regions) -> set[str]:
    return {r.key for r in regions if r.split == Split.LABELED}


def test_the_bundle_records_the_redrawn_labeled_blocks(redrawn, synth_catalog):
    bundle, _ = load_bundle(redrawn)
    catalog = load_catalog(synth_catalog)
    drawn = plan_splits(catalog, synth_catalog, 0.5, 1, "cover_classes")
    assert bundle.trained_on is not None
    assert bundle.trained_on.catalog_hash == catalog.input_hash
    assert set(bundle.trained_on.labeled) == _labeled_keys(drawn.regions)
    assert (bundle.trained_on.label_fraction, bundle.trained_on.label_selection) == (0.5, "cover_classes")
    # the case is only a test of the fix if the redraw differs from the catalog's own labeled blocks
    assert _labeled_keys(drawn.regions) != _labeled_keys(split_regions(catalog))
    plan = counted_plan(catalog, synth_catalog, trained_regions(bundle, redrawn, catalog, synth_catalog))
    assert np.array_equal(plan.labeled_counts, drawn.labeled_counts)  # novelty's spectra come from these pixels
    assert not np.array_equal(plan.labeled_counts, plan_splits(catalog, synth_catalog, None, 0).labeled_counts)


@pytest.mark.parametrize("method", ["novelty", "entropy"])
def test_no_window_lies_in_a_block_the_model_was_trained_on(redrawn, synth_catalog, tmp_path, method):
    out = tmp_path / "next.gpkg"
    result = run_cli("suggest", redrawn, MANIFEST, "--catalog", synth_catalog, "--out", out, "--size", 32,
                     "--threads", 1, "--n", 12, "--method", method)
    assert result.exit_code == 0, result.output
    windows = pyogrio.read_dataframe(out, layer=out.stem).geometry.to_numpy()
    assert len(windows) == 12
    bundle, _ = load_bundle(redrawn)
    catalog = load_catalog(synth_catalog)
    regions = trained_regions(bundle, redrawn, catalog, synth_catalog)
    trained = shapely.union_all([r.geometry for r in regions if r.split == Split.LABELED])
    assert np.all(shapely.area(shapely.intersection(windows, trained)) == 0)
    # the catalog's own labeled blocks that the redraw left unlabeled are open to suggestions
    freed = shapely.union_all([r.geometry for r in split_regions(catalog)
                               if r.split == Split.LABELED and r.key not in bundle.trained_on.labeled])
    unlabeled = shapely.union_all([r.geometry for r in regions if r.split == Split.UNLABELED])
    assert unlabeled.covers(freed) and shapely.covers(unlabeled, windows).all()


def test_a_catalog_ingested_again_since_training_is_refused(redrawn, synth_catalog, tmp_path):
    other = tmp_path / "catalog"
    shutil.copytree(synth_catalog, other)
    record = json.loads((other / "catalog.json").read_text())
    record["input_hash"] = "0" * 64
    (other / "catalog.json").write_text(json.dumps(record))
    out = tmp_path / "next.gpkg"
    result = run_cli("suggest", redrawn, MANIFEST, "--catalog", other, "--out", out, "--size", 32, "--threads", 1)
    assert result.exit_code == 2
    assert str(redrawn) in result.stderr and "trained on another catalog" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_older_bundle_without_the_record_falls_back_to_the_catalog_split(redrawn, synth_catalog, tmp_path):
    payload = torch.load(redrawn, weights_only=True)
    del payload["geossl"]["trained_on"]
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    bundle, _ = load_bundle(old)
    assert bundle.trained_on is None
    catalog = load_catalog(synth_catalog)
    regions = trained_regions(bundle, old, catalog, synth_catalog)
    assert _labeled_keys(regions) == _labeled_keys(split_regions(catalog))
