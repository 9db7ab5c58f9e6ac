"""Training with a prior map: the data module's ``prior``, end-to-end runs, exact resume, bad options."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import yaml

from geossl.catalog import load_catalog
from geossl.data.module import SslDataModule, plan_splits
from geossl.data.normalize import IGNORE
from geossl.data.spec import DataSpec
from geossl.data.views import dihedral
from geossl.ssl.prior import PriorTeacherConfig
from geossl.train.config import TrainConfig
from geossl.train.run import prior_in_use, train
from tests.conftest import run_cli
from tests.test_train import (
    MANIFEST,
    RESUMABLE,
    TINY,
    KillAt,
    Killed,
    assert_same_training_state,
    training_state,
)

#: The prior's own ids: class k is 10k + 1; 99 means "no opinion" (mapped to the ignore id); 255 is its nodata.
MAPPING = {**{10 * k + 1: k for k in range(1, 7)}, 99: 0}
NODATA, NO_OPINION = 255, 99


def noisy_prior(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """The synthetic truth in the prior's ids, 20% of it replaced by a random class, with nodata and no-opinion."""
    rng = np.random.default_rng(seed)
    classes = np.where(rng.random(labels.shape) < 0.2, rng.integers(1, 7, labels.shape), labels)
    prior = np.where(classes > 0, classes * 10 + 1, NODATA)
    prior[rng.random(labels.shape) < 0.1] = NODATA
    prior[:, :40] = NO_OPINION
    return prior.astype("uint8")


@pytest.fixture(scope="module")
def prior_case(synth_dir, tmp_path_factory) -> tuple[Path, Path, np.ndarray]:
    """The synthetic scene with a noisy copy of its truth as the manifest's prior: (manifest, catalog, prior ids)."""
    from geossl.ingest.run import IngestOptions, ingest

    src = tmp_path_factory.mktemp("prior_case")
    for name in ("scene.tif", "labels.tif"):
        shutil.copy(synth_dir / name, src / name)
    with rasterio.open(src / "labels.tif") as lab:
        prior, profile = noisy_prior(lab.read(1)), lab.profile
    profile.update(nodata=NODATA)
    with rasterio.open(src / "prior.tif", "w", **profile) as out:
        out.write(prior, 1)
    manifest = yaml.safe_load(MANIFEST.read_text())
    manifest["prior"] = {"rasters": ["prior.tif"], "classes": MAPPING}
    (src / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    ingest(src / "manifest.yaml", IngestOptions(out=src / "catalog", workers=1, quiet=True))
    return src / "manifest.yaml", src / "catalog", prior


def expected_prior(prior_ids: np.ndarray, origin: torch.Tensor, geom: torch.Tensor, size: int) -> torch.Tensor:
    """The class indexes of the prior window at ``origin`` with the weak view ``geom`` (IGNORE: no class)."""
    r, c = (int(v) for v in origin)
    window = torch.from_numpy(prior_ids[r:r + size, c:c + size].astype(np.int64))
    index = torch.where((window == NODATA) | (window == NO_OPINION), IGNORE, (window - 1) // 10 - 1)
    return dihedral(index, int(geom[0]), bool(geom[1]))


# ------------------------------------------------------------------------------------------- data
def test_unlabeled_windows_carry_the_prior_and_labeled_windows_never(prior_case):
    _, catalog_dir, prior_ids = prior_case
    catalog = load_catalog(catalog_dir)
    plan = plan_splits(catalog, catalog_dir, None, 0)
    loaders = {}
    for prior in (False, True):
        dm = SslDataModule(catalog, catalog_dir, plan, DataSpec(unlabeled=True, prior=prior), 64, 4, 4, 1, seed=5)
        made = dm.train_dataloader()
        loaders[prior] = {k: next(iter(v)) for k, v in made.items()}
    with_prior, without = loaders[True], loaders[False]
    assert "prior" not in with_prior["labeled"] and "prior" not in without["unlabeled"]
    # the same windows and views with or without the prior: reading it draws nothing
    for part in ("labeled", "unlabeled"):
        for key in ("image", "valid", "origin", "geom"):
            assert torch.equal(with_prior[part][key], without[part][key]), (part, key)
    batch = with_prior["unlabeled"]
    for i in range(len(batch["image"])):
        want = expected_prior(prior_ids, batch["origin"][i], batch["geom"][i], 64)
        assert torch.equal(batch["prior"][i], torch.where(batch["valid"][i], want, IGNORE))
    seen = batch["prior"][batch["valid"]]
    assert (seen == IGNORE).any() and set(seen[seen != IGNORE].tolist()) <= set(range(6))
    # where the hidden truth has a class, the prior mostly agrees (the 20% noise, minus random hits)
    agree = (batch["prior"] == batch["truth"]) & (batch["prior"] != IGNORE)
    assert agree.sum() > 0.6 * ((batch["prior"] != IGNORE) & (batch["truth"] != IGNORE)).sum()


def test_the_prior_is_used_where_the_catalog_has_one_and_the_strategy_makes_pseudo_labels(prior_case,
                                                                                          synth_catalog):
    with_prior, without = load_catalog(prior_case[1]), load_catalog(synth_catalog)
    assert prior_in_use(TrainConfig(strategy="fixmatch"), with_prior)
    assert not prior_in_use(TrainConfig(strategy="fixmatch", prior="off"), with_prior)
    assert not prior_in_use(TrainConfig(strategy="fixmatch", prior="{weight: 0}"), with_prior)
    assert not prior_in_use(TrainConfig(strategy="supervised"), with_prior)
    assert not prior_in_use(TrainConfig(strategy="fixmatch"), without)


# ------------------------------------------------------------------------------------------- training
def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "logs" / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(("strategy", "options"), [("fixmatch", {}), ("dwl", {"warmup_steps": 1})])
def test_geossl_train_learns_from_the_prior(strategy, options, prior_case, tmp_path):
    manifest, catalog, _ = prior_case
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**TINY, "strategy": {"name": strategy, **options},
                                      "prior": {"weight": 0.8, "until": 1.0}}))
    out = tmp_path / "run"
    result = run_cli("train", manifest, "--catalog", catalog, "--out", out, "--config", config, "--max-steps", "3")
    assert result.exit_code == 0, result.output
    taught = [(float(r["train_prior_weight"]), float(r["train_prior_share"])) for r in _rows(out)
              if r.get("train_prior_share")]
    # β(t) = 0.8·(1 − t) at t = step / 3, from DWL's first step past its warm-up
    first = 1 if strategy == "dwl" else 0
    assert [w for w, _ in taught] == pytest.approx([0.8 * (1 - s / 3) for s in range(first, 3)])
    # an untrained model is unsure nearly everywhere: FixMatch's gate leaves most pixels to the prior; DWL's
    # ranking weights (no threshold) are above β at most pixels, more of them as β falls
    shares = [share for _, share in taught]
    assert min(shares) > (0.3 if strategy == "fixmatch" else 0.01)
    assert strategy == "fixmatch" or shares == sorted(shares, reverse=True)
    saved = yaml.safe_load((out / "config.yaml").read_text())["prior"]
    assert saved == {"use": "auto", "weight": 0.8, "until": 1.0, "threshold": 0.95}


def test_a_killed_run_with_a_prior_resumes_to_the_uninterrupted_weights(prior_case, tmp_path):
    manifest, catalog, _ = prior_case
    config = TrainConfig(**{**RESUMABLE, "strategy": {"name": "fixmatch"}, "prior": {"weight": 0.8, "until": 1.0}})
    train(manifest, config, tmp_path / "once", catalog, quiet=True)
    with pytest.raises(Killed):
        train(manifest, config, tmp_path / "killed", catalog, quiet=True, callbacks=[KillAt(3)])
    assert training_state(tmp_path / "killed")["global_step"] == 2
    train(manifest, config, tmp_path / "killed", catalog, resume=True, quiet=True)
    once = training_state(tmp_path / "once")
    assert once["global_step"] == 5
    assert_same_training_state(once, training_state(tmp_path / "killed"))
    # the prior changed the training: without it the weights differ
    off = config.model_copy(update={"prior": PriorTeacherConfig(use="off")})
    train(manifest, off, tmp_path / "off", catalog, quiet=True)
    weights = training_state(tmp_path / "off")["state_dict"]
    assert not all(torch.equal(v, once["state_dict"][k]) for k, v in weights.items())


# ------------------------------------------------------------------------------------------- bad options
@pytest.mark.parametrize(("which", "flags", "says"), [
    ("plain", ["--strategy", "fixmatch", "--prior", "on"], "--prior: on, but the catalog has no prior map"),
    ("prior", ["--strategy", "supervised", "--prior", "on"], "--prior: on, but strategy supervised makes no"),
    ("prior", ["--strategy", "fixmatch", "--prior", "{weight: 3}"], "--prior: "),
    ("prior", ["--strategy", "fixmatch", "--prior", "often"], "--prior: "),
])
def test_bad_prior_options_exit_2_with_one_line(which, flags, says, prior_case, synth_catalog, tmp_path):
    manifest, catalog = (prior_case[0], prior_case[1]) if which == "prior" else (MANIFEST, synth_catalog)
    out = tmp_path / "run"
    result = run_cli("train", manifest, "--catalog", catalog, "--out", out, "--max-steps", "1", *flags)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert not out.exists()


def test_resume_refuses_other_prior_options(prior_case, tmp_path):
    manifest, catalog, _ = prior_case
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**TINY, "strategy": "fixmatch"}))
    first = run_cli("train", manifest, "--catalog", catalog, "--out", tmp_path / "run", "--config", config,
                    "--max-steps", "1")
    assert first.exit_code == 0, first.output
    result = run_cli("train", manifest, "--catalog", catalog, "--out", tmp_path / "run", "--config", config,
                     "--max-steps", "2", "--resume", "--prior", "{weight: 0.2}")
    assert result.exit_code == 2 and "--prior: differs from the run being resumed" in result.stderr, result.output
