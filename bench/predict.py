"""Benchmark of `geossl predict` (issue 3), every figure measured side by side in one run.

(a) overhead: end-to-end `predict` (checkpoint load, checks, Dask, reads, blending, writes, COGs) against the
    bare model forward over the same windows with the same batch size, in the same process; target <= 1.10.
(b) memory: peak RSS of a prediction process on a 16384^2 scene against a 4096^2 scene, same options;
    target <= 1.2. Each runs in its own child process and reports its kernel-measured peak (ru_maxrss).
(c) seams: disagreement rate of neighbouring pixels across window borders divided by the rate elsewhere
    (1.0 = borders invisible), for the blended prediction and for plain tiling (overlap 0) of the same model.
(d) GPU (``--gpu``): windows per second of `predict` on the GPU against the pure forward of the same windows on
    the same GPU; target >= 0.9.

Scenes come from geossl.synth (cached under bench/out/predict). Usage:
    python bench/predict.py [--quick]      # --quick: 1024^2 / 2048^2 scenes, a smaller overhead scene
    python bench/predict.py --gpu          # (d) only: predict's throughput on a GPU against the pure forward
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import rasterio
import torch
from scipy.ndimage import binary_erosion
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geossl.manifest import ClassDef  # noqa: E402
from geossl.models import ModelBundle, ModelConfig, Segmenter, save_bundle  # noqa: E402
from geossl.predict.run import PredictOptions, predict, predict_with  # noqa: E402
from geossl.predict.runner import ModuleModel, available_cores  # noqa: E402
from geossl.synth import SYNTH_CLASSES, SynthConfig, write_scene  # noqa: E402
from geossl.windows import WindowGrid  # noqa: E402

OUT = ROOT / "bench" / "out" / "predict"
BANDS = ["blue", "green", "red", "nir"]


def scene(size: int) -> Path:
    """A synthetic scene of ``size``^2 px (written once, then reused)."""
    folder = OUT / f"scene{size}"
    if not (folder / "scene.tif").is_file():
        t0 = time.perf_counter()
        write_scene(folder, SynthConfig(size=size, tile=512, seed=1))
        print(f"  wrote {size}^2 scene in {time.perf_counter() - t0:.0f} s", flush=True)
    return folder / "scene.tif"


def band_stats() -> dict:
    """Mean and std of the bands of the 1024^2 scene (computed once, cached beside the scenes)."""
    path = OUT / "band_stats.json"
    if not path.is_file():
        with rasterio.open(scene(1024)) as src:
            data = src.read().reshape(4, -1).astype(np.float64)
        valid = (data != 0).all(axis=0)
        path.write_text(json.dumps({"mean": data[:, valid].mean(axis=1).tolist(),
                                    "std": data[:, valid].std(axis=1).tolist()}))
    return json.loads(path.read_text())


def bundle(model: ModelConfig, patch: int = 256, overlap: int = 64) -> ModelBundle:
    return ModelBundle(classes=[ClassDef(id=i, name=n, color=c) for i, n, c, _ in SYNTH_CLASSES], bands=BANDS,
                       **band_stats(), nodata=0, patch_size=patch, overlap=overlap, model=model)


class TinyNet(nn.Module):
    """Two 3x3 convolutions (4 -> 8 -> 6 channels): a model cheap enough to stream a 16384^2 scene on 2 cores."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ---------------------------------------------------------------------------------------------- (a) overhead
def window_batches(b: ModelBundle, src: Path, batch: int) -> list[torch.Tensor]:
    """The normalized windows `predict` runs, batched as it batches them (per window row, all-nodata skipped)."""
    with rasterio.open(src) as s:
        x, valid = b.normalize(s.read())
    grid = WindowGrid(x.shape[1], x.shape[2], b.patch_size, b.overlap)
    batches = []
    for r in grid.row_starts:
        tiles = [x[:, r : r + b.patch_size, c : c + b.patch_size] for c in grid.col_starts
                 if valid[r : r + b.patch_size, c : c + b.patch_size].any()]
        batches += [torch.from_numpy(np.stack(tiles[i : i + batch])) for i in range(0, len(tiles), batch)]
    return batches


def overhead(size: int, batch: int) -> dict:
    cfg = ModelConfig(arch="unet", encoder="tu-resnet18", in_channels=4, num_classes=len(SYNTH_CLASSES))
    b = bundle(cfg)
    torch.manual_seed(0)
    net = Segmenter(cfg).eval()
    ckpt = OUT / "unet_resnet18.pt"
    save_bundle(ckpt, b, net)
    src = scene(size)
    batches = window_batches(b, src, batch)

    def forward_only() -> tuple[float, float]:
        """The bare forward passes, on a fresh thread as predict runs them on a Dask worker thread.

        (On the benchmark machine the same forward ran 30-40% slower on the main thread than on any other
        thread; timing it there would flatter predict.) Returns wall and CPU seconds.
        """
        times: list[tuple[float, float]] = []

        def run() -> None:
            torch.set_num_threads(available_cores())
            t0, c0 = time.perf_counter(), cpu_seconds()
            with torch.inference_mode():
                for x in batches:
                    net(x)
            times.append((time.perf_counter() - t0, cpu_seconds() - c0))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        return times[0]

    def end_to_end() -> tuple[float, float, dict]:
        t0, c0 = time.perf_counter(), cpu_seconds()
        (item,) = predict(ckpt, [src], PredictOptions(out=OUT / "overhead", batch_size=batch, quiet=True))
        return time.perf_counter() - t0, cpu_seconds() - c0, item["properties"]["geossl:prediction"]

    end_to_end()  # warm-up: imports, first Dask cluster, file cache
    rounds = []
    for _ in range(4):  # alternate, so that load from other work on the machine hits both sides alike
        fwd, fwd_cpu = forward_only()
        e2e, e2e_cpu, pred = end_to_end()
        rounds.append({"predict_s": round(e2e, 2), "forward_s": round(fwd, 2), "ratio": round(e2e / fwd, 3),
                       "predict_cpu_s": round(e2e_cpu, 2), "forward_cpu_s": round(fwd_cpu, 2),
                       "cpu_ratio": round(e2e_cpu / fwd_cpu, 3), "model_s_inside_predict": pred["model_seconds"]})
        print(f"  round: predict {e2e:.1f} s (model calls {pred['model_seconds']:.1f} s), forward {fwd:.1f} s, "
              f"ratio {e2e / fwd:.3f}; CPU {e2e_cpu:.1f} s vs {fwd_cpu:.1f} s", flush=True)
    assert pred["windows_run"] == sum(len(x) for x in batches)
    return {"scene": f"{size}^2", "model": "unet tu-resnet18 (14.3 M parameters), windows 256 overlap 64",
            "batch": batch, "windows": pred["windows"], "windows_run": pred["windows_run"],
            "windows_skipped_nodata": pred["windows_skipped_nodata"],
            "ratio": float(np.median([r["ratio"] for r in rounds])),
            "cpu_ratio": float(np.median([r["cpu_ratio"] for r in rounds])),
            "outside_model_share": float(np.median([(r["predict_s"] - r["model_s_inside_predict"]) / r["forward_s"]
                                                    for r in rounds])),
            "rounds": rounds}


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ----------------------------------------------------------------------------------------------- (d) GPU
def gpu_throughput(size: int, batch: int, workers: tuple[int, ...], block_width: int) -> dict:
    """Windows per second of `predict` on the GPU against the pure forward of the same windows there.

    The forward side runs the very windows `predict` runs, already normalized and already on the GPU, batched
    as predict batches them (fp32, softmax included, synchronized at the end): the model's throughput with
    nothing else to do. `predict` reads, normalizes, copies, blends and writes the class and confidence COGs.
    Target: predict >= 0.9 of the forward's throughput. ``model_s_inside_predict`` is the time predict spent
    handing batches to the GPU: the forward passes run asynchronously, so it is not the model's run time.
    """
    cfg = ModelConfig(arch="unet", encoder="tu-resnet18", in_channels=4, num_classes=len(SYNTH_CLASSES))
    torch.manual_seed(0)
    net = Segmenter(cfg).eval().cuda()
    ckpt, b = OUT / "unet_resnet18_gpu.pt", bundle(cfg)
    save_bundle(ckpt, b, net)
    src = scene(size)
    batches = [x.cuda() for x in window_batches(b, src, batch)]
    windows = sum(len(x) for x in batches)

    def forward() -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            for x in batches:
                torch.softmax(net(x).float(), dim=1)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    def end_to_end(n_workers: int) -> tuple[float, dict]:
        opts = PredictOptions(out=OUT / "gpu", batch_size=batch, device="cuda", workers=n_workers,
                              threads=max(1, available_cores() // n_workers), block_width=block_width, quiet=True)
        t0 = time.perf_counter()
        (item,) = predict(ckpt, [src], opts)
        return time.perf_counter() - t0, item["properties"]["geossl:prediction"]

    forward()  # warm-up: cuDNN autotuning, allocator
    res: dict = {"device": torch.cuda.get_device_name(), "scene": f"{size}^2", "windows": windows,
                 "batch": batch, "block_width": block_width, "model": "unet tu-resnet18 fp32, windows 256/64"}
    for n in workers:
        end_to_end(n)  # warm-up: Dask cluster, checkpoint load, file cache
        rounds = []
        for _ in range(2):
            fwd = forward()
            e2e, pred = end_to_end(n)
            rounds.append({"forward_s": round(fwd, 3), "predict_s": round(e2e, 3),
                           "model_s_inside_predict": pred["model_seconds"], "ratio": round(fwd / e2e, 3)})
            print(f"  workers {n}: forward {windows / fwd:7.1f} windows/s, predict {windows / e2e:7.1f} windows/s "
                  f"-> {fwd / e2e:.3f} of the forward (model calls inside predict {pred['model_seconds']:.2f} s)",
                  flush=True)
        res[f"workers_{n}"] = {"throughput_ratio": float(np.median([r["ratio"] for r in rounds])), "rounds": rounds}
    return res


# ------------------------------------------------------------------------------------------------ (b) memory
def memory_child(src: str, out: str, block_width: int) -> None:
    """Run in a child process: predict ``src`` with the tiny network; print the peak RSS as JSON."""
    b = bundle(ModelConfig(arch="unet", encoder="tu-resnet18", in_channels=4, num_classes=6))
    torch.manual_seed(0)
    net = TinyNet()
    before = psutil.Process().memory_info().rss  # interpreter, torch, Dask, GDAL loaded: the fixed part
    t0 = time.perf_counter()
    (item,) = predict_with(b, ModuleModel(net), [Path(src)],
                           PredictOptions(out=Path(out), block_width=block_width, quiet=True))
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss": peak, "rss_before": before, "seconds": seconds,
                      **item["properties"]["geossl:prediction"]}))


def memory(small: int, large: int, block_width: int) -> dict:
    res = {}
    for size in (small, large):
        src = scene(size)
        cmd = [sys.executable, __file__, "--memory-child", str(src), str(OUT / f"mem{size}"), str(block_width)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            raise RuntimeError(proc.stderr[-2000:])
        res[size] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"  {size}^2: peak RSS {res[size]['peak_rss'] / 2**20:.0f} MiB "
              f"({(res[size]['peak_rss'] - res[size]['rss_before']) / 2**20:.0f} MiB above the loaded process) "
              f"in {res[size]['seconds']:.0f} s "
              f"({res[size]['blocks']} blocks, {res[size]['windows_run']} windows)", flush=True)
    return {"model": "TinyNet (2 conv 3x3, 4->8->6), windows 256 overlap 64", "block_width": block_width,
            **{f"{s}^2": {"peak_rss_mib": round(r["peak_rss"] / 2**20, 1),
                          "working_set_mib": round((r["peak_rss"] - r["rss_before"]) / 2**20, 1),
                          "seconds": round(r["seconds"], 1),
                          "blocks": r["blocks"], "windows_run": r["windows_run"],
                          "megapixels_per_s": round(s * s / r["seconds"] / 1e6, 2)} for s, r in res.items()},
            "ratio": round(res[large]["peak_rss"] / res[small]["peak_rss"], 3),
            "working_set_ratio": round((res[large]["peak_rss"] - res[large]["rss_before"])
                                       / (res[small]["peak_rss"] - res[small]["rss_before"]), 3)}


# ------------------------------------------------------------------------------------------------- (c) seams
def seam_rate(classes: np.ndarray, valid: np.ndarray, borders: list[int], axis: int) -> tuple[float, float]:
    """Rates of class changes between neighbours along ``axis``: across ``borders`` and elsewhere."""
    a = classes if axis == 1 else classes.T
    v = valid if axis == 1 else valid.T
    change = a[:, 1:] != a[:, :-1]
    both = v[:, 1:] & v[:, :-1]
    on = np.zeros(change.shape[1], dtype=bool)
    on[[x - 1 for x in borders if 0 < x < a.shape[1]]] = True  # pair (x-1, x) straddles border x
    at, away = change[:, on][both[:, on]], change[:, ~on][both[:, ~on]]
    return float(at.mean()), float(away.mean())


def seams(size: int) -> dict:
    """Seam scores over the scene's interior: pixels at least 32 px from nodata and from the scene's edges.

    (Predictions next to nodata or the scene's edge change class more often; the irregular last window lies
    next to the edge, so without the margin its borders would count that edge effect as a seam.)
    """
    ckpt = OUT / "unet_resnet18.pt"
    src = scene(size)
    with rasterio.open(src) as s:
        valid = (s.read() != 0).all(axis=0)
    valid = binary_erosion(np.pad(valid, 1), np.ones((65, 65), dtype=bool))[1:-1, 1:-1]
    res = {}
    for name, overlap in (("blended (overlap 64, Hann)", 64), ("tiled (overlap 0)", 0)):
        out = OUT / f"seams{overlap}"
        predict(ckpt, [src], PredictOptions(out=out, overlap=overlap, quiet=True))
        with rasterio.open(out / "scene_classes.tif") as c:
            classes = c.read(1)
        grid = WindowGrid(size, size, 256, overlap)
        lines = sorted({s for s in grid.col_starts} | {s + 256 for s in grid.col_starts})
        rows = sorted({s for s in grid.row_starts} | {s + 256 for s in grid.row_starts})
        on_c, off_c = seam_rate(classes, valid, lines, axis=1)
        on_r, off_r = seam_rate(classes, valid, rows, axis=0)
        on, off = (on_c + on_r) / 2, (off_c + off_r) / 2
        res[name] = {"border_rate": round(on, 4), "elsewhere_rate": round(off, 4), "score": round(on / off, 3)}
    return {"scene": f"{size}^2", "model": "unet tu-resnet18, untrained (seed 0)", **res}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--memory-child", nargs=3, metavar=("SCENE", "OUT", "BLOCK_WIDTH"))
    ap.add_argument("--gpu", action="store_true", help="(d) only: throughput on the GPU against the forward")
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child[0], args.memory_child[1], int(args.memory_child[2]))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if args.gpu:
        print("(d) GPU throughput", flush=True)
        gpu = gpu_throughput(4096, batch=32, workers=(1, 4), block_width=1024)
        (OUT / "results_gpu.json").write_text(json.dumps(gpu, indent=1))
        return
    sizes = (1024, 2048, 1024) if args.quick else (4096, 16384, 2048)
    print(f"geossl predict benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs", flush=True)
    band_stats()
    print("(b) memory", flush=True)
    mem = memory(sizes[0], sizes[1], block_width=2048 if args.quick else 4096)
    print(f"  peak RSS ratio {sizes[1]}^2 / {sizes[0]}^2 = {mem['ratio']:.3f} (target <= 1.2); "
          f"working set ratio {mem['working_set_ratio']:.3f}", flush=True)
    print("(a) overhead", flush=True)
    ovh = overhead(sizes[2], batch=8)
    print(f"  {ovh['windows_run']} windows: median wall ratio {ovh['ratio']:.3f} (target <= 1.10), CPU ratio "
          f"{ovh['cpu_ratio']:.3f}, time outside the model calls {ovh['outside_model_share']:.3f} of the forward",
          flush=True)
    print("(c) seams", flush=True)
    sea = seams(sizes[2])
    for name, r in sea.items():
        if isinstance(r, dict):
            print(f"  {name}: border {r['border_rate']:.4f} vs elsewhere {r['elsewhere_rate']:.4f} -> "
                  f"score {r['score']:.3f} (1.0 = no seam)", flush=True)
    (OUT / "results.json").write_text(json.dumps({"memory": mem, "overhead": ovh, "seams": sea}, indent=1))
    print(f"results in {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
