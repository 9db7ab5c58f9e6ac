"""Where to label next, simulated on Zion: do `geossl suggest`'s windows teach the model more than random ones?

The loop of issue 14. Start from data_manifests/zion.yaml (1/8 of the train blocks labeled, chosen to cover
every class). For each seed ``s``: train the round-0 model (``--seed s``); then, in each of ``--rounds``
rounds, two arms each add ``k`` windows of ``--size`` px to their labels and retrain:

- ``suggested``: ``geossl suggest`` with the previous round's model of that arm (its defaults, or
  ``--suggest-args``) on the arm's catalog. The defaults are novelty without diversity since 2026-11-28; the
  runs of the earlier defaults are recorded as ``suggested[--method entropy --diversity features]``;
- ``random``: ``k`` windows drawn with seed ``s`` among the same candidates (on the grid of ``geossl suggest``, fully
  inside the arm's unlabeled area, no nodata), none overlapping;
- ``oracle`` (``--arms oracle``, a bound, not a ranking geossl could offer): ``k`` windows chosen with the
  truth, greedily, each adding the most of the classes the arm's labels hold least of (a window's value is
  ``sum_c n_c / (L_c + 1)``, ``n_c`` its pixels of class ``c``, ``L_c`` the labeled pixels of ``c`` with the
  windows already chosen). It shows how far any ranking could get with windows of this size on this scene.

With ``--fine-tune-steps N`` every arm of the invocation is an arm of its own, ``KIND+ftN``: its rounds 1.. start
from the previous round's model (``geossl train --init-from``, as a ``geossl run`` pipeline's later rounds do) and
train ``N`` steps instead of the recipe's ``--max-steps`` from scratch; the table sets it beside the arm trained
from scratch each round (same seeds, same recipe otherwise), and each record holds its steps and minutes.

``k`` windows hold about as many pixels as one block. A window's labels are the truth raster's classes inside
it, polygonized as an analyst would digitise them, written to a GeoPackage that the arm's manifest names in
``labels.drawn``; the arm's catalog is ingested again, so the windows leave its unlabeled split and join its
labeled split, and the model is retrained (``--seed s``) with the recipe flags and evaluated on the test
blocks (the same in every catalog; checked). Prints test and validation mIoU per round for each arm, per seed
and the mean.

    python bench/active_learning.py --data-root ../shared/data                 # geossl train's defaults (hours)
    python bench/active_learning.py --encoder tu-mobilenetv3_small_050 --patch-size 64 --batch-size 8 \\
        --steps-per-epoch 100 --max-steps 300 --threads 1 --seeds 3             # a cheap recipe
    python bench/active_learning.py ... --arms suggested --fine-tune-steps 100  # its rounds fine-tuned

Outputs under ``--out`` (default bench/out/active_learning): ``results.json`` (every round's metrics, the
windows and the pixels per class they added; a later invocation with other ``--seeds``, ``--arms`` or
``--suggest-args`` adds its runs), one folder per seed and arm, logs.
Target (issue 14): after 3 rounds, suggested >= random + 3 mIoU points.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geossl.catalog import load_catalog  # noqa: E402
from geossl.data.regions import class_counts  # noqa: E402
from geossl.io.names import METRICS_FILE  # noqa: E402
from geossl.manifest import Split  # noqa: E402
from geossl.suggest.candidates import inside_area  # noqa: E402
from geossl.suggest.options import CELLS_PER_WINDOW  # noqa: E402
from geossl.suggest.run import split_areas  # noqa: E402

MANIFEST = ROOT / "data_manifests" / "zion.yaml"
TARGET_POINTS = 3.0
_LOCK = threading.Lock()


def cli(*args: object, log: Path) -> None:
    """Run ``geossl ARGS`` (quiet), its output into ``log``; stop the bench if it fails."""
    cmd = [sys.executable, "-m", "geossl.cli", "-q", *map(str, args)]
    with open(log, "a") as out:
        result = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out,
                                stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}; see {log}")


def recipe(a: argparse.Namespace) -> list[str]:
    """The training flags every model of the bench gets."""
    flags: list[object] = ["--strategy", a.strategy, "--threads", a.threads]
    for name in ("encoder", "patch_size", "batch_size", "steps_per_epoch", "max_steps"):
        if getattr(a, name) is not None:
            flags += [f"--{name.replace('_', '-')}", getattr(a, name)]
    for width in a.decoder_channels or []:
        flags += ["--decoder-channels", width]
    return [str(f) for f in flags]


def manifest_for(a: argparse.Namespace, drawn: Path | None, path: Path) -> Path:
    """zion.yaml with absolute data paths (``labels.drawn``, ``--split-seed``), written at ``path``."""
    m = yaml.safe_load(MANIFEST.read_text())
    m["imagery"]["paths"] = [str((a.data_root / p).absolute()) for p in m["imagery"]["paths"]]
    m["labels"]["rasters"] = [str((a.data_root / p).absolute()) for p in m["labels"]["rasters"]]
    if drawn is not None:
        m["labels"]["drawn"] = [str(drawn.absolute())]
    if a.split_seed is not None:
        m["splits"]["blocks"]["seed"] = a.split_seed
    path.write_text(yaml.safe_dump(m, sort_keys=False))
    return path


def train_and_test(a: argparse.Namespace, manifest: Path, catalog: Path, run: Path, seed: int,
                   start: Path | None = None) -> dict[str, Any]:
    """Ingest (if needed), train and evaluate on the test blocks; the test metrics (cached in the run folder).

    ``start``: fine-tune from that model for ``--fine-tune-steps`` steps instead of training from scratch.
    """
    metrics_path = run / "eval-test" / METRICS_FILE
    if not metrics_path.is_file():
        run.parent.mkdir(parents=True, exist_ok=True)
        log = run.parent / f"{run.name}.log"
        cli("ingest", manifest, "--out", catalog, "--workers", 1, log=log)
        check_test_split(a.base_catalog, catalog)
        if run.exists():
            subprocess.run(["rm", "-rf", str(run)], check=True)
        t0 = time.time()
        workers = [] if a.loader_workers is None else ["--workers", a.loader_workers]  # speed only: not the recipe
        tune = [] if start is None else ["--init-from", start, "--max-steps", a.fine_tune_steps]  # last wins
        cli("train", manifest, "--catalog", catalog, "--out", run, "--seed", seed, *recipe(a), *workers, *tune,
            log=log)
        (run / "train_seconds.txt").write_text(f"{time.time() - t0:.1f}")
        cli("evaluate", run / "model.pt", manifest, "--catalog", catalog, "--split", "test",
            "--out", run / "eval-test", "--threads", a.threads, log=log)
    metrics = json.loads(metrics_path.read_text())
    val = json.loads((run / METRICS_FILE).read_text())["val"]  # the kept checkpoint's validation scores
    return {"miou": metrics["miou"], "oa": metrics["oa"], "iou": metrics["iou"], "val_miou": val["miou"],
            "val_iou": val["iou"], "train_seconds": float((run / "train_seconds.txt").read_text()),
            "steps": _steps_trained(run), "fine_tuned": start is not None}


def _steps_trained(run: Path) -> int | None:
    """The optimizer steps of a finished training (its last checkpoint's ``global_step``)."""
    import torch

    last = run / "checkpoints" / "last.ckpt"
    if not last.is_file():
        return None
    return int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])


def check_test_split(base: Path, catalog: Path) -> None:
    """The test blocks of ``catalog`` are the base catalog's (drawn labels must not move them)."""
    def tests(folder: Path) -> list[str]:
        return sorted(json.dumps(f.geometry) for f in load_catalog(folder).splits.features
                      if f.properties.split in ("test", "val"))
    if tests(base) != tests(catalog):
        raise SystemExit(f"{catalog}: validation/test blocks differ from the base catalog's")


def block_pixels(catalog: Path) -> float:
    """Pixels of one block (the mean over the catalog's blocks)."""
    cat = load_catalog(catalog)
    area = statistics.mean(_area(f.geometry) for f in cat.splits.features if f.properties.row is not None)
    return area / (cat.resolution[0] * cat.resolution[1])


def _area(geometry: dict) -> float:
    from shapely.geometry import shape

    return shape(geometry).area


def trained_splits(catalog: Path, model: Path) -> list:
    """The catalog's regions as ``model`` was trained on them (its record of the labeled area)."""
    from geossl.models import describe_bundle
    from geossl.train.inputs import trained_regions

    return trained_regions(describe_bundle(model), model, load_catalog(catalog), catalog)


def candidate_windows(catalog: Path, size: int, model: Path) -> np.ndarray:
    """``(N, 2)`` top-left (row, col) of the windows fully inside the area ``model`` left unlabeled, no nodata.

    The grid (steps of ``size / CELLS_PER_WINDOW`` px) starts at the unlabeled area's top-left pixel (as
    ``geossl suggest``'s, up to the suggestions' own start).
    """
    import rasterio

    cat = load_catalog(catalog)
    inside, outside = split_areas(trained_splits(catalog, model), catalog)
    scene = cat.scenes[0]
    with rasterio.open(catalog / scene.image) as src:
        valid = src.dataset_mask() > 0
        t = src.transform
    minx, _, _, maxy = inside.bounds
    r0, c0 = max(0, int((t.f - maxy) // -t.e)), max(0, int((minx - t.c) // t.a))
    cell = size // CELLS_PER_WINDOW
    rows = np.arange(r0, valid.shape[0] - size + 1, cell)
    cols = np.arange(c0, valid.shape[1] - size + 1, cell)
    rr, cc = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
    full = _window_sums(valid, rr, cc, size) == size * size
    rr, cc = rr[full], cc[full]
    boxes = np.stack([t.c + cc * t.a, t.f + (rr + size) * t.e, t.c + (cc + size) * t.a, t.f + rr * t.e], axis=1)
    keep = inside_area(boxes, inside, outside)
    return np.stack([rr[keep], cc[keep]], axis=1)


def random_windows(catalog: Path, size: int, k: int, seed: int, round_: int, model: Path) -> list[tuple[int, int]]:
    """``k`` non-overlapping candidate windows in a seeded random order."""
    windows = candidate_windows(catalog, size, model)
    order = np.random.default_rng([seed, round_]).permutation(len(windows))
    chosen: list[tuple[int, int]] = []
    free = np.ones(len(windows), bool)
    for i in order:
        if free[i]:
            chosen.append((int(windows[i, 0]), int(windows[i, 1])))
            free &= _apart(windows, i, size)
            if len(chosen) == k:
                break
    return chosen


def oracle_windows(catalog: Path, truth: Path, size: int, k: int, model: Path) -> list[tuple[int, int]]:
    """``k`` non-overlapping candidate windows chosen with the truth: the rarest classes first (module docstring)."""
    import rasterio

    cat = load_catalog(catalog)
    ids = [c.id for c in cat.classes]
    truth_labels = truth / cat.scenes[0].labels
    with rasterio.open(truth_labels) as src:
        labels = src.read(1)
    labeled = [r.geometry for r in trained_splits(catalog, model) if r.split == Split.LABELED]
    held = class_counts([truth_labels], labeled, ids).sum(axis=0).astype(float)
    windows = candidate_windows(catalog, size, model)
    counts = np.stack([_window_sums(labels == i, windows[:, 0], windows[:, 1], size) for i in ids], axis=1)
    counts = counts.astype(float)
    chosen: list[tuple[int, int]] = []
    free = np.ones(len(windows), bool)
    while len(chosen) < k and free.any():
        value = np.where(free, (counts / (held + 1)).sum(1), -np.inf)
        best = int(np.argmax(value))
        chosen.append((int(windows[best, 0]), int(windows[best, 1])))
        held += counts[best]
        free &= _apart(windows, best, size)
    return chosen


def _apart(windows: np.ndarray, i: int, size: int) -> np.ndarray:
    """Which of the ``size``-px ``windows`` (``(N, 2)`` top-left row, col) do not overlap window ``i``."""
    return np.any(np.abs(windows - windows[i]) >= size, axis=1)


def _window_sums(mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, size: int) -> np.ndarray:
    """Pixels of ``mask`` inside each ``size``-px window whose top-left is (rows, cols)."""
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    return (integral[rows + size, cols + size] - integral[rows, cols + size] - integral[rows + size, cols]
            + integral[rows, cols])


def suggested_windows(a: argparse.Namespace, model: Path, manifest: Path, catalog: Path, k: int, out: Path
                      ) -> list[tuple[int, int]]:
    """``geossl suggest``'s ``k`` windows (its defaults, or ``--suggest-args``) with ``model`` on ``catalog``."""
    import pyogrio

    if not out.is_file():
        cli("suggest", model, manifest, "--catalog", catalog, "--out", out, "--n", k, "--size", a.size,
            "--threads", a.threads, "--overwrite", *a.suggest_args.split(), log=out.with_suffix(".log"))
    frame = pyogrio.read_dataframe(out, layer=out.stem, read_geometry=False)
    return [(int(r), int(c)) for r, c in zip(frame["row"], frame["col"], strict=True)]


def write_drawn(catalog: Path, windows: list[tuple[int, int]], size: int, out: Path) -> dict[str, int]:
    """The truth labels inside ``windows`` as polygons with a ``class`` field (a GeoPackage); pixels per class."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import shapes
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform
    from shapely.geometry import shape

    cat = load_catalog(catalog)
    records, counts = [], {c.name: 0 for c in cat.classes}
    names = {c.id: c.name for c in cat.classes}
    with rasterio.open(catalog / cat.scenes[0].labels) as src:
        for r, c in windows:
            win = Window(c, r, size, size)
            data = src.read(1, window=win)
            for geom, value in shapes(data, mask=data != cat.ignore_id, transform=window_transform(win, src.transform)):
                records.append({"class": int(value), "geometry": shape(geom)})
            for value, n in zip(*np.unique(data[data != cat.ignore_id], return_counts=True), strict=True):
                counts[names[int(value)]] += int(n)
        crs = src.crs
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs=crs)
    frame["class"] = frame["class"].astype("int32")
    frame.to_file(out, driver="GPKG")
    return counts


def arm_name(kind: str, suggest_args: str, fine_tune_steps: int | None = None) -> str:
    """``random``, ``suggested``, or ``suggested[--diversity classes]`` with other suggest flags; ``+ft100``
    when its later rounds fine-tune the previous round's model for 100 steps."""
    name = f"{kind}[{suggest_args}]" if kind == "suggested" and suggest_args.strip() else kind
    return name if fine_tune_steps is None else f"{name}+ft{fine_tune_steps}"


def arm(a: argparse.Namespace, seed: int, kind: str, k: int, results: dict) -> None:
    """One arm's rounds for one seed (the round-0 model is the seed's)."""
    name = arm_name(kind, a.suggest_args, a.fine_tune_steps)
    folder = a.out / f"seed{seed}" / "".join(c if c.isalnum() else "_" for c in name).strip("_")
    folder.mkdir(parents=True, exist_ok=True)
    model, manifest, catalog = a.out / f"seed{seed}" / "round0" / "model.pt", a.base_manifest, a.base_catalog
    windows: list[tuple[int, int]] = []
    for r in range(1, a.rounds + 1):
        if kind == "suggested":
            new = suggested_windows(a, model, manifest, catalog, k, folder / f"suggest_r{r}.gpkg")
        elif kind == "oracle":
            new = oracle_windows(catalog, a.base_catalog, a.size, k, model)
        else:
            new = random_windows(catalog, a.size, k, seed, r, model)
        windows += new
        added = write_drawn(a.base_catalog, windows, a.size, folder / f"drawn_r{r}.gpkg")
        manifest = manifest_for(a, folder / f"drawn_r{r}.gpkg", folder / f"manifest_r{r}.yaml")
        catalog = folder / "catalog"
        run = folder / f"round{r}"
        start = model if a.fine_tune_steps is not None else None
        record = train_and_test(a, manifest, catalog, run, seed, start)
        record.update(windows=new, labeled_pixels_added=added)
        model = run / "model.pt"
        report(results, a, f"{name}@{seed}", r, record)


def report(results: dict, a: argparse.Namespace, key: str, r: int, record: dict) -> None:
    """Keep one round's record and print it."""
    with _LOCK:
        results["runs"].setdefault(key, {})[str(r)] = record
        results["elapsed_s"] = round(time.time() - a.started, 1)
        (a.out / "results.json").write_text(json.dumps(results, indent=1))
        print(f"{key:<14} round {r}: test mIoU {100 * record['miou']:5.1f}  OA {100 * record['oa']:5.1f}  "
              f"({record['train_seconds'] / 60:4.1f} min training)", flush=True)


def table(results: dict, rounds: int, metric: str = "miou") -> str:
    """``metric`` (test or validation mIoU) per round: each seed of each arm, the arms' means, suggested − random."""
    runs = results["runs"]
    seeds = sorted({int(k.split("@")[1]) for k in runs})
    kinds = sorted({k.split("@")[0] for k in runs if not k.startswith("round0")}, key=lambda n: (n == "random", n))
    head = "| run | " + " | ".join(f"round {r}" for r in range(rounds + 1)) + " |"
    lines = [head, "|---|" + "---|" * (rounds + 1)]

    def value(kind: str, seed: int, r: int) -> float | None:
        record = runs.get(f"round0@{seed}" if r == 0 else f"{kind}@{seed}", {}).get(str(r))
        return None if record is None or metric not in record else 100 * record[metric]

    means = {}
    for kind in kinds:
        for seed in seeds:
            cells = [value(kind, seed, r) for r in range(rounds + 1)]
            lines.append(f"| {kind}, seed {seed} | " + " | ".join("–" if v is None else f"{v:.1f}" for v in cells)
                         + " |")
        means[kind] = [_mean([value(kind, s, r) for s in seeds]) for r in range(rounds + 1)]
        lines.append(f"| **{kind}, mean** | " + " | ".join("–" if v is None else f"**{v:.1f}**"
                                                          for v in means[kind]) + " |")
    for kind in kinds[:-1] if "random" in means else []:
        diff = [None if s is None or q is None else s - q for s, q in zip(means[kind], means["random"], strict=True)]
        lines.append(f"| {kind} − random | " + " | ".join("–" if v is None else f"{v:+.1f}" for v in diff) + " |")
    return "\n".join(lines)


def _flag_pairs(flags: list[str]) -> list[tuple[str, str]]:
    """A recipe's (flag, value) pairs in a fixed order: two recipes are the same whatever their flags' order."""
    return sorted(zip(flags[::2], flags[1::2], strict=True))


def _mean(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.mean(got) if got else None


def earlier_results(a: argparse.Namespace) -> dict:
    """The runs already in ``--out`` (none: empty), refused before anything is ingested there when they were
    trained with another recipe or drawn with another ``--split-seed``."""
    path = a.out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    first = results.get("headers", [None])[0]
    if first and (_flag_pairs(first["recipe"]) != _flag_pairs(recipe(a)) or first.get("split_seed") != a.split_seed):
        raise SystemExit(f"{path} holds runs of another recipe or --split-seed; give another --out")
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "active_learning")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=None,
                   help="another draw of zion.yaml's blocks (splits.blocks.seed): other labeled, val, test blocks")
    p.add_argument("--size", type=int, default=64, help="suggested / random window side (px)")
    p.add_argument("--jobs", type=int, default=2, help="arms run side by side")
    p.add_argument("--loader-workers", type=int, default=None,
                   help="each training's DataLoader processes (geossl train --workers; speed only)")
    p.add_argument("--arms", nargs="+", choices=["suggested", "random", "oracle"], default=["suggested", "random"])
    p.add_argument("--suggest-args", default="", help="other geossl suggest flags, e.g. '--diversity classes' "
                                                      "(an arm of its own; results of other arms in --out are kept)")
    p.add_argument("--fine-tune-steps", type=int, default=None,
                   help="rounds 1.. fine-tune the previous round's model for this many steps (geossl run's "
                        "fine_tune) instead of training from scratch: arms of their own, e.g. suggested+ft100")
    recipe_flags = p.add_argument_group("training recipe (geossl train's defaults unless given)")
    recipe_flags.add_argument("--strategy", default="supervised")
    recipe_flags.add_argument("--encoder", default=None)
    recipe_flags.add_argument("--decoder-channels", type=int, nargs=5, default=None)
    recipe_flags.add_argument("--patch-size", type=int, default=None)
    recipe_flags.add_argument("--batch-size", type=int, default=None)
    recipe_flags.add_argument("--steps-per-epoch", type=int, default=None)
    recipe_flags.add_argument("--max-steps", type=int, default=None)
    recipe_flags.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    if not (a.data_root / "zion" / "landsat8_zion_20150818_B2B3B4B5.tif").is_file():
        raise SystemExit(f"Zion data not found under {a.data_root}/zion")
    a.out = a.out.absolute()
    a.out.mkdir(parents=True, exist_ok=True)
    a.started = time.time()
    results = earlier_results(a)
    a.base_manifest = manifest_for(a, None, a.out / "manifest.yaml")
    a.base_catalog = a.out / "catalog"
    cli("ingest", a.base_manifest, "--out", a.base_catalog, "--workers", 1, log=a.out / "ingest.log")
    k = max(1, round(block_pixels(a.base_catalog) / a.size**2))
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    header = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": platform.node(),
              "cpus": os.cpu_count(), "load_before": os.getloadavg(), "recipe": recipe(a), "size": a.size, "k": k,
              "rounds": a.rounds, "split_seed": a.split_seed, "seeds": seeds, "jobs": a.jobs, "arms": a.arms,
              "suggest_args": a.suggest_args}
    results["headers"] = [*results.get("headers", []), header]
    print(f"{k} windows of {a.size} px a round (one block: {block_pixels(a.base_catalog):.0f} px); recipe: "
          f"{' '.join(recipe(a))}", flush=True)
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        def round0(seed: int) -> None:
            record = train_and_test(a, a.base_manifest, a.base_catalog, a.out / f"seed{seed}" / "round0", seed)
            report(results, a, f"round0@{seed}", 0, record)

        list(pool.map(round0, seeds))
        list(pool.map(lambda job: arm(a, *job, k, results), [(s, kind) for s in seeds for kind in a.arms]))
    header["load_after"] = os.getloadavg()
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    print("Test mIoU\n" + table(results, a.rounds) + "\n\nValidation mIoU (the kept checkpoint)\n"
          + table(results, a.rounds, "val_miou"))


if __name__ == "__main__":
    main()
