"""Semi-supervised accuracy on a real region (Zion by default): which strategy closes the gap to full labels?

Spatially disjoint 8x8 blocks (data_manifests/zion.yaml: 20% val, 20% test); the labeled set is 1/8 of the
train blocks (chosen to cover every class, ``labeled_selection: cover_classes``), the rest of train is
unlabeled. Same model (by default U-Net with a ResNet-18 encoder from scratch, patch 96, 16 labeled + 8
unlabeled patches per step, 1500 steps: the recipe chosen by validation mIoU in bench/RESULTS.md), for
supervised (1/8 labels), fixmatch, unimatch, crossview, dwl and supervised with every train label (the upper
bound). Prints test macro mIoU, per-class IoU and the gap closure (ssl - sup_1/8) / (sup_full - sup_1/8), and
the time of one training step of each strategy against one supervised step on the same batch (measured side by
side, round robin, in one process, on the same real batches; data loading excluded). Beside them, the classic
peer: a per-pixel random forest (bench/forest.py) on the same 1/8 and all train labels, scored on the same
val and test pixels with the same metrics.

    python bench/ssl_accuracy.py --data-root ../shared/data            # the table (one seed, hours on 2 cores)
    python bench/ssl_accuracy.py --data-root ../shared/data --variants --only crossview_full
    python bench/ssl_accuracy.py --data-root ../shared/data --probe    # step times only (sizing)
    python bench/ssl_accuracy.py --data-root ../shared/data --only dwl --prior forest   # dwl and dwl_prior

``--prior forest`` adds, for each semi-supervised row run, a row ``NAME_prior``: the same training with a prior
map (``geossl train``'s ``prior`` option at its defaults), the per-pixel random forest trained on the labeled
blocks only and predicted over the whole scene (bench/forest_prior.py; the forest of the first seed, capped by
``--forest-max-per-class``), ingested into a catalog of its own (same scene, blocks and splits).

``--manifest`` measures another region with the same rows (e.g. ``data_manifests/fair_zanzibar.yaml``, 0.15 m
aerial RGB with building masks). ``--warm`` adds, for each 1/8 row, a row ``NAME_warm`` that starts from the same
seed's ``supervised_1/8`` model (``geossl train --init-from``; run it first) and trains ``--warm-steps`` more
steps; ``supervised_1/8_warm`` is their control (the same extra steps without an unlabeled term).
``--warm-from-seed S`` starts every seed's warm rows from seed ``S``'s model: the spread of the second phase alone.
Each row records the test mIoU of its best-validation model and of its last checkpoint, and the share and accuracy
of the pseudo-labels its loss used at each validation.

    python bench/ssl_accuracy.py --manifest data_manifests/fair_zanzibar.yaml --out bench/out/fair_zanzibar \
        --only supervised_1/8 supervised_full --no-forest --timing-rounds 0
    python bench/ssl_accuracy.py --manifest data_manifests/fair_zanzibar.yaml --out bench/out/fair_zanzibar \
        --warm --only fixmatch_warm supervised_1/8_warm --no-forest --timing-rounds 0

``--pretrain`` adds, for each row run, a row ``NAME_pretrained``: the same training with its encoder starting
from ``geossl pretrain``'s weights (``geossl train --weights``) instead of random ones. The bench pretrains once,
with ``geossl pretrain``'s defaults and the bench's encoder, seed and threads, into ``OUT/pretrain`` (kept and
reused by later invocations), or takes the ``encoder.pt`` given (``--pretrain FILE``).

    python bench/ssl_accuracy.py --data-root ../shared/data --pretrain --only supervised_1/8_pretrained dwl_pretrained

Targets: crossview and dwl each >= supervised-1/8 + 3 mIoU points and gap closure >= 0.5; one SSL step
<= 2.5x one supervised step; supervised with all labels >= the forest with all labels; the moonshot: an SSL
row at 1/8 labels >= the forest with all labels.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from forest import FOREST_ROWS, forest_runs  # noqa: E402
from forest_prior import forest_prior  # noqa: E402

from geossl.io.names import METRICS_FILE  # noqa: E402

RUNS = [  # (run name, strategy, extra train flags, the strategy's options): the notes' defaults
    ("supervised_1/8", "supervised", [], {}),
    ("fixmatch", "fixmatch", [], {}),
    ("unimatch", "unimatch", [], {}),
    ("crossview", "crossview", [], {}),
    ("dwl", "dwl", [], {}),
    ("supervised_full", "supervised", ["--label-fraction", "1.0"], {}),
]
VARIANTS = [  # --variants: options the strategies expose, beyond the notes' defaults
    ("crossview_full", "crossview", [], {"strong_views": 2, "single_stream": False}),  # CrossMatch's full recipe
    ("crossview_fixed_threshold", "crossview", [], {"adaptive_threshold": False}),
    ("crossview_ema", "crossview", [], {"teacher": "ema"}),
    ("dwl_student", "dwl", [], {"teacher": "student"}),  # the paper's teacher (dwl's default before 2026-11-28)
    ("supervised_1/8_balanced", "supervised", ["--labeled-sampling", "class_balanced"], {}),
    ("crossview_balanced", "crossview", ["--labeled-sampling", "class_balanced"], {}),
    ("prototype", "prototype", [], {}),
    ("dwl_segments", "dwl", [], {"refine": {"name": "segments"}}),
    ("fixmatch_adaptive", "fixmatch", [], {"adaptive_threshold": True}),  # class-adaptive τ_c (issue 24, item 3)
]
TARGET_POINTS, TARGET_CLOSURE, TARGET_STEP_RATIO = 3.0, 0.5, 2.5
#: ``--prior``: the suffix of the rows trained with the prior map.
PRIOR_SUFFIX = "_prior"
#: ``--pretrain``: the suffix of the rows whose encoder starts from the scene-pretrained weights.
PRETRAINED_SUFFIX = "_pretrained"
#: ``--warm``: the suffix of the rows that start from the same seed's supervised 1/8 model (``--init-from``) and
#: train ``--warm-steps`` more steps; ``supervised_1/8_warm`` is their control (the same steps, no unlabeled term).
WARM_SUFFIX = "_warm"
WARM_FROM = "supervised_1/8"
SAME_PATCHES = "supervised (labeled + unlabeled patches)"


def cli(*args: str, log: Path | None = None) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "geossl.cli", "-q", *map(str, args)]
    with open(log, "w") if log else open(os.devnull, "w") as out:
        result = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}" + (f"; see {log}" if log else ""))


def model_flags(a: argparse.Namespace) -> list[str]:
    return ["--encoder", a.encoder, "--patch-size", str(a.patch_size), "--batch-size", str(a.batch_size),
            "--unlabeled-batch-size", str(a.unlabeled_batch_size), "--threads", str(a.threads),
            "--workers", str(a.loader_workers)]


def step_times(a: argparse.Namespace, catalog: Path, rounds: int) -> dict[str, float]:
    """Median seconds of one training step per strategy, measured round robin on the same real batches."""
    import torch

    from geossl.catalog import load_catalog
    from geossl.data.module import SslDataModule, plan_splits
    from geossl.data.spec import DataSpec
    from geossl.models import Segmenter
    from geossl.ssl import STRATEGIES
    from geossl.ssl.crossview import CrossViewConfig
    from geossl.train.config import TrainConfig
    from geossl.train.run import model_config

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cat = load_catalog(catalog)
    plan = plan_splits(cat, catalog, None, 0)
    batches = {}
    for spec in (DataSpec(unlabeled=True), CrossViewConfig().data_spec()):
        dm = SslDataModule(cat, catalog, plan, spec, a.patch_size, a.batch_size, a.unlabeled_batch_size, 2)
        loaders = dm.train_dataloader()
        batches[spec.paired] = (next(iter(loaders["labeled"])), next(iter(loaders["unlabeled"])))
    # The second reading of "the same batch size": a supervised step on as many patches as an SSL step sees.
    dm = SslDataModule(cat, catalog, plan, DataSpec(unlabeled=True), a.patch_size,
                       a.batch_size + a.unlabeled_batch_size, a.unlabeled_batch_size, 2)
    batches[SAME_PATCHES] = (next(iter(dm.train_dataloader()["labeled"])), None)
    setups = {}
    for name in ("supervised", SAME_PATCHES, *(n for n in STRATEGIES if n != "supervised")):
        params = {"warmup_steps": 0} if name == "dwl" else {}
        cfg = TrainConfig(strategy={"name": name.split()[0], **params}, encoder=a.encoder, patch_size=a.patch_size,
                          batch_size=a.batch_size, decoder_channels=a.decoder_channels)
        model = Segmenter(model_config(cfg, cat)).train()
        strategy = STRATEGIES[cfg.strategy.name](model, cfg.strategy)
        if name == "dwl":  # time it in steady state: a full class memory (50 batches)
            with torch.no_grad():
                probs = model(batches[False][1]["image"]).softmax(dim=1)
            for _ in range(strategy.config.memory_batches):
                strategy.memory.update(probs, probs.argmax(dim=1), batches[False][1]["valid"])
        paired = cfg.strategy.data_spec().paired
        setups[name] = (paired, strategy, torch.optim.AdamW(strategy.trainable(), lr=1e-3))
    times: dict[str, list[float]] = {n: [] for n in setups}
    for r in range(rounds + 1):
        for name, (paired, strategy, opt) in setups.items():
            batch_l, batch_u = batches[SAME_PATCHES if name == SAME_PATCHES else paired]
            batch_u = batch_u and {k: v for k, v in batch_u.items() if k != "truth"}
            t0 = time.perf_counter()
            out = strategy.training_step(batch_l, batch_u, 100, 1000)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            strategy.after_optimizer_step()
            if r:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


def picked(row: str, only: list[str]) -> bool:
    """Whether ``--only`` names this row: by its name or its strategy's (``fixmatch`` picks ``fixmatch_warm``)."""
    return row in only or row.split("_")[0] in only


def print_step_times(a: argparse.Namespace, times: dict[str, float]) -> None:
    """Each strategy's step time against a supervised step, and the verdict on the step-time target."""
    n_l, n_u = a.batch_size, a.unlabeled_batch_size
    print(f"step time (s, median of {a.timing_rounds}; patch {a.patch_size}, {a.encoder}); SSL steps take {n_l} "
          f"labeled + {n_u} unlabeled patches; ratios against supervised on the same {n_l} labeled patches "
          f"(the target's reading) and on {n_l + n_u} patches (as many patches as the SSL step):")
    print(f"  supervised ({n_l} patches) {times['supervised']:.3f} s, supervised ({n_l + n_u} patches) "
          f"{times[SAME_PATCHES]:.3f} s")
    for name, t in times.items():
        if name.startswith("supervised"):
            continue
        ratio = t / times["supervised"]
        verdict = "ok" if ratio <= TARGET_STEP_RATIO else "MISSES target"
        print(f"  {name:<10} {t:7.3f} s  x{ratio:4.2f} (target <= {TARGET_STEP_RATIO}: {verdict}); "
              f"x{t / times[SAME_PATCHES]:4.2f} supervised on {n_l + n_u} patches")


def main() -> None:
    a = parse_args()
    manifest = a.manifest.resolve()
    if not a.catalog and not data_present(manifest, a.data_root):
        raise SystemExit(f"the data of {manifest.name} is not under {a.data_root}")
    a.out.mkdir(parents=True, exist_ok=True)
    catalog = a.catalog or a.out / "catalog"
    if not a.catalog:
        cli("ingest", manifest, "--data-root", a.data_root, "--out", catalog, "--workers", "2")
    started = time.time()
    results_path = a.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() and a.only else {}
    results["header"] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": platform.node(),
                         "cpus": os.cpu_count(), "load_before": os.getloadavg(), "encoder": a.encoder,
                         "decoder_channels": a.decoder_channels, "patch_size": a.patch_size,
                         "batch_size": a.batch_size, "unlabeled_batch_size": a.unlabeled_batch_size,
                         "steps": a.steps, "threads": a.threads, "jobs": a.jobs,
                         "train_options": a.train_option}
    times = step_times(a, catalog, a.timing_rounds) if a.timing_rounds else {}
    if times:
        print_step_times(a, times)
        results["step_times"] = times
    results_path.write_text(json.dumps(results, indent=2))
    if a.probe:
        return
    rows = RUNS + (VARIANTS if a.variants else [])
    rows += prior_rows(rows) if a.prior else []
    rows += pretrained_rows(rows) if a.pretrain is not None else []
    rows += warm_rows(rows) if a.warm else []
    selected = [row for row in rows if not a.only or picked(row[0], a.only)]
    unknown = sorted(n for n in a.only or () if n != "forest" and not any(picked(r[0], [n]) for r in rows))
    if unknown:
        raise SystemExit(f"--only: no row named {', '.join(unknown)} with these flags (--variants, --warm, "
                         f"--prior, --pretrain add rows)")
    todo = [(seed, *row) for seed in range(a.first_seed, a.first_seed + a.seeds) for row in selected]
    inputs = {False: (manifest, catalog)}
    if a.prior and any(row[1].endswith(PRIOR_SUFFIX) for row in todo):
        inputs[True] = prior_inputs(a, manifest, catalog, results)
    weights = pretrained_weights(a, manifest, catalog, results) if any(
        row[1].endswith(PRETRAINED_SUFFIX) for row in todo) else None
    config = bench_config(a)
    jobs = [partial(train_row, a, config, inputs, weights, *job) for job in todo]
    if not a.no_forest and (not a.only or "forest" in a.only):  # one job per seed (both rows), started first
        jobs[:0] = [partial(forest_runs, catalog, s, a.threads, a.forest_max_per_class)
                    for s in range(a.first_seed, a.first_seed + a.seeds)]
    run_jobs(jobs, a.jobs, results, results_path, started)
    results["header"]["load_after"] = os.getloadavg()
    results_path.write_text(json.dumps(results, indent=2))
    print(table(results))


def data_present(manifest: Path, data_root: Path) -> bool:
    """Whether every file ``manifest`` names is under ``data_root``."""
    from geossl.errors import InputError
    from geossl.manifest import load_manifest, resolve_inputs

    try:
        resolve_inputs(load_manifest(manifest), manifest, data_root)
    except InputError:
        return False
    return True


def parse_args() -> argparse.Namespace:
    """The bench's options (module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--manifest", type=Path, default=ROOT / "data_manifests" / "zion.yaml",
                   help="the region (default: Zion); e.g. data_manifests/fair_zanzibar.yaml")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ssl_accuracy")
    p.add_argument("--catalog", type=Path, default=None,
                   help="an existing catalog of --manifest (default: ingest one under --out)")
    p.add_argument("--encoder", default="tu-resnet18")
    p.add_argument("--decoder-channels", type=int, nargs=5, default=None, help="default: smp's (256 ... 16)")
    p.add_argument("--patch-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--unlabeled-batch-size", type=int, default=None,
                   help="default: the batch size (as the references: UniMatch, RS-DWL)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--evals", type=int, default=6, help="validations (and checkpoints) per run")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--first-seed", type=int, default=0, help="seeds run: first-seed .. first-seed + seeds - 1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=2, help="trainings side by side (2 cores, 1 thread each)")
    p.add_argument("--loader-workers", type=int, default=0,
                   help="each training's DataLoader processes (geossl train --workers): on a GPU machine with "
                        "cores to spare, they read windows while the card trains")
    p.add_argument("--timing-rounds", type=int, default=8, help="0: skip the step timing")
    p.add_argument("--probe", action="store_true", help="step times only")
    p.add_argument("--variants", action="store_true", help="also the VARIANTS rows")
    p.add_argument("--only", nargs="*", default=None, help="run names to (re)run, e.g. dwl crossview forest")
    p.add_argument("--no-forest", action="store_true", help="skip the random-forest rows")
    p.add_argument("--forest-max-per-class", type=int, default=None,
                   help="train the forest on at most this many pixels per class (seeded subset; default: all)")
    p.add_argument("--prior", choices=["forest"], default=None,
                   help="also each semi-supervised row with a prior map: the forest of the labeled blocks")
    p.add_argument("--warm", action="store_true",
                   help="also each row warm-started from the same seed's supervised_1/8 model (run it first)")
    p.add_argument("--warm-steps", type=int, default=500, help="steps of the --warm rows")
    p.add_argument("--warm-from-seed", type=int, default=None,
                   help="start every seed's --warm rows from this seed's supervised_1/8 model (default: its own): "
                        "the spread of the second phase alone")
    p.add_argument("--train-option", action="append", default=[], metavar="KEY=YAML",
                   help="a training option for every row run, e.g. lr=1.0e-4 or 'views={brightness: 0.4}' "
                        "(repeatable; the ablations of issue 24)")
    p.add_argument("--pretrain", nargs="?", const="", default=None, metavar="ENCODER_PT",
                   help="also each row with its encoder pretrained on the scene (geossl pretrain's defaults, run "
                        "once under --out; or this encoder.pt)")
    a = p.parse_args()
    a.unlabeled_batch_size = a.unlabeled_batch_size or a.batch_size
    return a


def bench_config(a: argparse.Namespace) -> Path:
    """The training config every row starts from: validations per run, the decoder, truth-scored pseudo-labels."""
    config = a.out / "bench_config.yaml"
    decoder = f"decoder_channels: {a.decoder_channels}\n" if a.decoder_channels else ""  # none: smp's default
    options = "".join(f"{key}: {json.dumps(value)}\n" for key, value in map(train_option, a.train_option))
    config.write_text(f"{decoder}steps_per_epoch: {max(1, a.steps // a.evals)}\npseudo_truth: true\n{options}")
    return config


def train_option(text: str) -> tuple[str, object]:
    """``KEY=YAML`` of ``--train-option`` as ``(KEY, value)``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SystemExit(f"--train-option {text!r}: expected KEY=YAML")
    return key.strip(), yaml.safe_load(value)


def train_row(a: argparse.Namespace, config: Path, inputs: dict[bool, tuple[Path, Path]], weights: Path | None,
              seed: int, name: str, strategy: str, extra: list[str], params: dict) -> dict[str, dict]:
    """Train one row with one seed and evaluate it on the test blocks: ``{"NAME@SEED": record}``."""
    if name.endswith(PRETRAINED_SUFFIX):
        extra = [*extra, "--weights", str(weights)]
    steps = a.steps
    if name.endswith(WARM_SUFFIX):
        start_seed = seed if a.warm_from_seed is None else a.warm_from_seed
        start = run_folder(a, WARM_FROM, start_seed) / "model.pt"
        if not start.is_file():
            raise SystemExit(f"{name}: {start} not found (run {WARM_FROM} with seed {start_seed} first)")
        extra, steps = [*extra, "--init-from", str(start)], a.warm_steps
        config = warm_config(a, config)
    manifest, catalog = inputs[name.endswith(PRIOR_SUFFIX)]
    key = f"{name}@{seed}"
    run_dir = run_folder(a, name, seed)
    if run_dir.exists():
        subprocess.run(["rm", "-rf", str(run_dir)], check=True)
    run_dir.mkdir(parents=True)
    run_config = run_dir / "bench_config.yaml"
    run_config.write_text(config.read_text() + f"strategy: {json.dumps({'name': strategy, **params})}\n")
    t0 = time.time()
    cli("train", manifest, "--catalog", catalog, "--out", run_dir, "--config", run_config, *model_flags(a),
        "--max-steps", steps, "--seed", seed, *extra,
        log=a.out / f"{key.replace('/', '_')}.log")
    train_s = time.time() - t0
    cli("evaluate", run_dir / "model.pt", manifest, "--catalog", catalog, "--split", "test",
        "--out", run_dir / "eval-test", "--threads", a.threads)
    metrics = json.loads((run_dir / "eval-test" / METRICS_FILE).read_text())
    cli("evaluate", run_dir / "checkpoints" / "last.ckpt", manifest, "--catalog", catalog, "--split", "test",
        "--out", run_dir / "eval-test-last", "--threads", a.threads)
    last = json.loads((run_dir / "eval-test-last" / METRICS_FILE).read_text())
    best = json.loads((run_dir / METRICS_FILE).read_text())
    val = best.get("val", {})
    return {key: {"miou": metrics["miou"], "iou": metrics["iou"], "oa": metrics["oa"], "kappa": metrics["kappa"],
                  "val_miou": val.get("miou"), "train_seconds": train_s, "best_step": best.get("step"),
                  "last_miou": last["miou"], "last_iou": last["iou"], "steps": steps,
                  "pseudo": pseudo_curve(run_dir)}}


def run_folder(a: argparse.Namespace, name: str, seed: int) -> Path:
    """A row's training folder under ``--out``."""
    return a.out / "runs" / f"{name.replace('/', '_')}-seed{seed}"


def warm_config(a: argparse.Namespace, config: Path) -> Path:
    """The bench config of the ``--warm`` rows: as many validations over their ``--warm-steps``."""
    warm = a.out / "bench_config_warm.yaml"
    text = config.read_text().replace(f"steps_per_epoch: {max(1, a.steps // a.evals)}",
                                      f"steps_per_epoch: {max(1, a.warm_steps // a.evals)}")
    warm.write_text(text)
    return warm


def pseudo_curve(run_dir: Path) -> list[dict]:
    """Per validation: the step, validation mIoU, the share of unlabeled pixels the loss used and their accuracy."""
    import csv

    rows = []
    with open(run_dir / "logs" / "metrics.csv") as f:
        for row in csv.DictReader(f):
            if row.get("val_miou") or row.get("pseudo_used_share"):
                rows.append({k: float(row[k]) for k in ("step", "val_miou", "pseudo_used_share", "pseudo_accuracy")
                             if row.get(k)})
    return rows


def run_jobs(jobs: list[Callable[[], dict[str, dict]]], workers: int, results: dict, results_path: Path,
             started: float) -> None:
    """Run ``jobs`` ``workers`` side by side, recording each one's rows as it finishes.

    One process per core with ``--threads 1``: each run's time is its own wall. A run that fails is reported
    and the others go on.
    """
    runs = results.setdefault("runs", {})
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in as_completed([pool.submit(job) for job in jobs]):
            try:
                records = future.result()
            except (SystemExit, Exception) as exc:  # noqa: BLE001 - one failed run must not lose the others
                print(f"run failed: {exc}", flush=True)
                continue
            runs.update(records)
            results["elapsed_s"] = time.time() - started
            results_path.write_text(json.dumps(results, indent=2))
            for key, record in records.items():
                print(f"{key:<22} test mIoU {100 * record['miou']:5.1f}  (val {100 * (record['val_miou'] or 0):5.1f}, "
                      f"{record['train_seconds'] / 60:5.1f} min)", flush=True)


def prior_rows(rows: list[tuple]) -> list[tuple]:
    """The ``--prior`` rows: each semi-supervised row again, named ``NAME_prior``."""
    return [(name + PRIOR_SUFFIX, strategy, extra, params) for name, strategy, extra, params in rows
            if strategy != "supervised"]


def prior_inputs(a: argparse.Namespace, manifest: Path, catalog: Path, results: dict) -> tuple[Path, Path]:
    """The forest's prior map written and ingested with a copy of the manifest: (that manifest, its catalog)."""
    t0 = time.time()
    prior_manifest, record = forest_prior(manifest, a.data_root, catalog, a.out / "prior_forest", a.first_seed,
                                          a.threads, a.forest_max_per_class)
    prior_catalog = a.out / "prior_forest" / "catalog"
    cli("ingest", prior_manifest, "--out", prior_catalog, "--workers", "2")
    results["prior"] = {"kind": a.prior, **record, "seconds": time.time() - t0}
    return prior_manifest, prior_catalog


def warm_rows(rows: list[tuple]) -> list[tuple]:
    """The ``--warm`` rows: each 1/8 row again, named ``NAME_warm`` (supervised_1/8_warm is the control)."""
    return [(name + WARM_SUFFIX, strategy, extra, params) for name, strategy, extra, params in rows
            if "--label-fraction" not in extra and not name.endswith((PRIOR_SUFFIX, PRETRAINED_SUFFIX))]


def pretrained_rows(rows: list[tuple]) -> list[tuple]:
    """The ``--pretrain`` rows: each row again (not the prior ones), named ``NAME_pretrained``."""
    return [(name + PRETRAINED_SUFFIX, strategy, extra, params) for name, strategy, extra, params in rows
            if not name.endswith(PRIOR_SUFFIX)]


def pretrained_weights(a: argparse.Namespace, manifest: Path, catalog: Path, results: dict) -> Path:
    """The encoder.pt the ``_pretrained`` rows load: ``--pretrain FILE``, or one pretraining run under --out."""
    if a.pretrain:
        return Path(a.pretrain).resolve()
    from geossl.pretrain.run import ENCODER_FILE

    weights = a.out / "pretrain" / ENCODER_FILE
    if not weights.is_file():
        t0 = time.time()
        cli("pretrain", manifest, "--catalog", catalog, "--out", weights.parent, "--encoder", a.encoder,
            "--seed", a.first_seed, "--threads", a.threads, log=a.out / "pretrain.log")
        results["pretrain"] = {"weights": str(weights), "seconds": time.time() - t0}
    return weights


def table(results: dict) -> str:
    runs = results["runs"]
    rows = RUNS + VARIANTS
    rows += prior_rows(rows)
    names = [row[0] for row in rows + pretrained_rows(rows) + warm_rows(rows)] + list(FOREST_ROWS)
    seeds = sorted({int(k.split("@")[1]) for k in runs})
    classes = list(next(iter(runs.values()))["iou"])

    def mean(name: str, get) -> float | None:
        vals = [get(runs[f"{name}@{s}"]) for s in seeds if f"{name}@{s}" in runs]
        vals = [v for v in vals if v is not None]
        return statistics.mean(vals) if vals else None

    def fmt(v: float | None) -> str:
        return "–" if v is None else f"{100 * v:.1f}"

    lines = ["| method | seeds | test mIoU (best val) | ± | test mIoU (last) | OA | val mIoU | gap closure | "
             + " | ".join(classes) + " |", "|---|---|---|---|---|---|---|---|" + "---|" * len(classes)]
    sup, full = mean("supervised_1/8", lambda r: r["miou"]), mean("supervised_full", lambda r: r["miou"])
    for name in names:
        m = mean(name, lambda r: r["miou"])
        if m is None:
            continue
        baseline = name.split("_")[0] in ("supervised", "forest")
        closure = "" if sup is None or full is None or full == sup or baseline else f"{(m - sup) / (full - sup):+.2f}"
        ious = [fmt(mean(name, lambda r, c=c: r["iou"][c])) for c in classes]
        oa, val = mean(name, lambda r: r["oa"]), mean(name, lambda r: r["val_miou"])
        last = mean(name, lambda r: r.get("last_miou"))
        values = [runs[f"{name}@{s}"]["miou"] for s in seeds if f"{name}@{s}" in runs]
        spread = f"{100 * statistics.stdev(values):.1f}" if len(values) > 1 else "–"
        lines.append(f"| {name} | {len(values)} | {fmt(m)} | {spread} | {fmt(last)} | {fmt(oa)} | {fmt(val)} | "
                     f"{closure} | " + " | ".join(ious) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
