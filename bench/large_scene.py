"""A gigapixel run (issue 26): a synthetic scene through ingest → predict → vectorize, every step measured.

For each scene size (default 8192² = 67 MP and 32768² = 1.07 GP, 4 bands uint16, written once by
``geossl synth`` and cached under bench/out/large_scene):

* ``geossl ingest`` of the scene's manifest (imagery and labels COGs, band statistics, block splits);
* predict of the ingested image with a tiny network: ``predict_with``, the function ``geossl predict`` calls once
  it has loaded a checkpoint, with the CLI's default options (Dask, column blocks, class and confidence COGs).
  The network (:class:`SignatureNet`, a 1×1 and a 5×5 convolution) is the nearest class signature, smoothed, so
  the class map has the scene's structure: an untrained network's speckle would make vectorize a different job.
  No segmentation-models network is cheap enough: the smallest tried (U-Nets on timm's mobilenetv3_small_050,
  test_resnet, lcnet_035 with 4–16 decoder channels) cost 4–15× a two-convolution network per pixel on 2 cores;
* ``geossl vectorize --min-area --simplify`` of the predicted classes into a GeoPackage;
* the I/O floor, side by side: reading the scene (rasterio, row strips, every band) and copying predict's two
  output rasters into COGs with the creation options predict uses (``gdal_translate`` from gdal-bin when
  installed, else rasterio's COG driver; the JSON says which).

Each step runs as its own child process (``python -m geossl.cli ...``; predict: this script's
``--predict-child``); its wall time and peak RSS are measured from outside: the kernel's ``ru_maxrss`` of the
child or, when larger, the summed RSS of its process tree polled every 50 ms.

Targets, printed against their peers: each step's peak RSS at the largest size ≤ 1.3× at the smallest and under
3 GB; predict's wall time ≤ 2× the I/O floor's (throughput within 2× of the floor).

    python bench/large_scene.py [--sizes 8192 32768] [--out bench/out/large_scene]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import GEOSSL, machine  # noqa: E402

OUT = ROOT / "bench" / "out" / "large_scene"
MIN_AREA = 400.0  # m²: regions under 4 pixels of 10 m are sieved
SIMPLIFY = 5.0  # m: half a pixel
RSS_RATIO_TARGET = 1.3
RSS_CAP = 3 * 10**9  # bytes
FLOOR_FACTOR = 2.0
STEPS = ("ingest", "predict", "vectorize")
#: Rows read at once by the floor's reader (all bands, the scene's full width).
FLOOR_STRIP = 512


@dataclass
class Measured:
    """Wall time (s) and peak resident memory (bytes) of one child process; its stdout."""

    seconds: float
    peak_rss: int
    stdout: str = ""


#: Runs a command (argv[2:]) and writes its exit code and kernel peak RSS (KiB) as JSON to argv[1]. The kernel
#: keeps, in a child's ``ru_maxrss``, the peak of the process it was spawned from (the memory it replaced on
#: exec), so the command is spawned from this small interpreter rather than from the benchmark's own process.
WRAPPER = """
import json, resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
open(sys.argv[1], "w").write(json.dumps({"rc": rc, "maxrss_kib": peak}))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd``; return its wall time and peak RSS (kernel ``ru_maxrss``, or the polled tree sum if larger).

    Raises RuntimeError with the tail of its stderr when it fails.
    """
    with tempfile.TemporaryDirectory() as tmp:
        usage = Path(tmp) / "usage.json"
        with open(Path(tmp) / "out", "w+") as out, open(Path(tmp) / "err", "w+") as err:
            start = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", WRAPPER, str(usage), *cmd], stdout=out, stderr=err,
                                    env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
            polled = 0
            while proc.poll() is None:
                polled = max(polled, _children_rss(proc.pid))
                time.sleep(0.05)
            seconds = time.perf_counter() - start
            out.seek(0)
            err.seek(0)
            report = json.loads(usage.read_text()) if usage.is_file() else {"rc": proc.returncode}
            if proc.returncode or report["rc"]:
                raise RuntimeError(f"{' '.join(cmd)} failed ({report['rc']}):\n{err.read()[-3000:]}")
            return Measured(seconds, max(report["maxrss_kib"] * 1024, polled), out.read())


def _children_rss(pid: int) -> int:
    """Summed RSS of a process's descendants (0 when it is gone)."""
    try:
        return int(sum(c.memory_info().rss for c in psutil.Process(pid).children(recursive=True)))
    except psutil.Error:
        return 0


# ------------------------------------------------------------------------------------------- the tiny network
def signature_net(catalog_dir: Path) -> tuple[Any, Any]:
    """The bench's network and its bundle: nearest synthetic class signature on normalized bands, smoothed 5×5."""
    import numpy as np
    import torch
    from torch import nn

    from geossl.catalog import load_catalog
    from geossl.models import ModelBundle, ModelConfig
    from geossl.synth import SYNTH_CLASSES

    catalog = load_catalog(catalog_dir)
    mean = np.array([b.mean for b in catalog.band_stats], dtype=np.float32)
    std = np.array([b.std for b in catalog.band_stats], dtype=np.float32)
    signature = {cid: sig for cid, _name, _color, sig in SYNTH_CLASSES}
    mu = (np.array([signature[c.id] for c in catalog.classes], dtype=np.float32) - mean) / std  # (K, bands)
    k = len(catalog.classes)
    net = nn.Sequential(nn.Conv2d(len(mean), k, 1), nn.Conv2d(k, k, 5, padding=2, groups=k, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(2 * mu)[:, :, None, None])
        net[0].bias.copy_(torch.from_numpy(-(mu**2).sum(axis=1)))
        net[1].weight.fill_(1 / 25)
    # The model config only describes a network in checkpoints; predict_with runs the module it is given.
    config = ModelConfig(arch="unet", encoder="tu-resnet18", in_channels=len(mean), num_classes=k)
    bundle = ModelBundle(classes=catalog.classes, ignore_id=catalog.ignore_id, bands=catalog.bands,
                         mean=mean.tolist(), std=std.tolist(), nodata=catalog.nodata, patch_size=256, overlap=64,
                         model=config)
    return bundle, net


def predict_child(catalog_dir: Path, out: Path, block_width: int | None) -> None:
    """In a child process: predict the catalog's scene with :func:`signature_net`; print the run's record."""
    from geossl.catalog import load_catalog
    from geossl.predict.options import PredictOptions
    from geossl.predict.run import predict_with
    from geossl.predict.runner import ModuleModel

    catalog = load_catalog(catalog_dir)
    bundle, net = signature_net(catalog_dir)
    image = catalog.path_of(catalog_dir, catalog.scenes[0].image)
    extra = {"block_width": block_width} if block_width else {}
    (item,) = predict_with(bundle, ModuleModel(net), [image], PredictOptions(out=out, quiet=True, **extra))
    files = {k: str(out / v["href"]) for k, v in item["assets"].items()}
    print(json.dumps({"prediction": item["properties"]["geossl:prediction"], "files": files}))


# ----------------------------------------------------------------------------------------------- the chain
def synth_scene(size: int, folder: Path) -> tuple[Path, float | None]:
    """The synthetic scene of ``size``² in ``folder`` (written once): its manifest and the seconds it took."""
    manifest = folder / "manifest.yaml"
    if manifest.is_file():
        return manifest, None
    run = measure([*GEOSSL, "-q", "synth", str(folder), "--size", str(size), "--tile", "512"])
    return manifest, run.seconds


def step_record(run: Measured, pixels: int) -> dict[str, float]:
    """A step's figures: wall seconds, megapixels per second, peak RSS in MiB."""
    return {"seconds": round(run.seconds, 2), "mp_per_s": round(pixels / run.seconds / 1e6, 3),
            "peak_rss_mib": round(run.peak_rss / 2**20, 1)}


def chain(size: int, folder: Path, block_width: int | None = None) -> dict[str, Any]:
    """Synth (cached), ingest, predict and vectorize a ``size``² scene under ``folder``; every step measured."""
    import pyogrio
    import yaml

    from geossl.catalog import load_catalog

    manifest, synth_s = synth_scene(size, folder / "scene")
    catalog_dir, predicted, gpkg = folder / "catalog", folder / "predicted", folder / "polygons.gpkg"
    shutil.rmtree(catalog_dir, ignore_errors=True)
    shutil.rmtree(predicted, ignore_errors=True)
    pixels = size * size
    ingest = measure([*GEOSSL, "-q", "ingest", str(manifest), "--out", str(catalog_dir), "--force"])
    child = [sys.executable, str(Path(__file__).resolve()), "--predict-child", str(catalog_dir), str(predicted)]
    predict = measure(child + ([str(block_width)] if block_width else []))
    record = json.loads(predict.stdout.strip().splitlines()[-1])
    vectorize = measure([*GEOSSL, "-q", "vectorize", record["files"]["classes"], "--out", str(gpkg),
                         "--min-area", str(MIN_AREA), "--simplify", str(SIMPLIFY), "--overwrite"])
    catalog = load_catalog(catalog_dir)
    image = catalog.path_of(catalog_dir, catalog.scenes[0].image)
    return {"size": size, "megapixels": round(pixels / 1e6, 1), "synth_s": synth_s,
            "steps": {name: step_record(run, pixels) for name, run in
                      (("ingest", ingest), ("predict", predict), ("vectorize", vectorize))},
            "floor": io_floor(image, record["files"], folder / "floor", pixels, catalog.classes),
            "prediction": record["prediction"], "polygons": int(pyogrio.read_info(gpkg, layer=gpkg.stem)["features"]),
            "files": {"labels": str(manifest.parent / yaml.safe_load(manifest.read_text())["labels"]["rasters"][0]),
                      "catalog": str(catalog_dir), "image": str(image), **record["files"], "polygons": str(gpkg)}}


# ------------------------------------------------------------------------------------------- the I/O floor
READ_SNIPPET = """
import sys, rasterio
from rasterio.windows import Window
strip = int(sys.argv[2])
with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(sys.argv[1]) as src:
    for r in range(0, src.height, strip):
        src.read(window=Window(0, r, src.width, min(strip, src.height - r)))
"""
COPY_SNIPPET = """
import json, sys, rasterio.shutil
rasterio.shutil.copy(sys.argv[1], sys.argv[2], driver="COG", **json.loads(sys.argv[3]))
"""


def floor_tool() -> str:
    """What writes the floor's COGs: gdal-bin's ``gdal_translate`` when installed, else rasterio's COG driver."""
    return "gdal_translate" if shutil.which("gdal_translate") else "rasterio"


def copy_command(src: str, dst: Path, options: dict[str, str]) -> list[str]:
    """A command copying ``src`` into a COG at ``dst`` with GDAL creation ``options``."""
    if floor_tool() == "gdal_translate":
        return ["gdal_translate", "-q", "-of", "COG", *[a for k, v in options.items() for a in ("-co", f"{k}={v}")],
                src, str(dst)]
    return [sys.executable, "-c", COPY_SNIPPET, src, str(dst), json.dumps(options)]


def io_floor(image: Path, outputs: dict[str, str], folder: Path, pixels: int, classes: list[Any]) -> dict[str, Any]:
    """Read the scene, and copy predict's class and confidence rasters into COGs as predict writes them."""
    from geossl.io.cog import CogOptions
    from geossl.predict.encode import ClassCoding
    from geossl.predict.writers import output_kinds

    folder.mkdir(parents=True, exist_ok=True)
    kinds = output_kinds(classes, ClassCoding.of(classes, 0), probabilities=False)
    resampling = {k.name: k.overview_resampling for k in kinds}
    runs = {"read": measure([sys.executable, "-c", READ_SNIPPET, str(image), str(FLOOR_STRIP)])}
    for name in ("classes", "confidence"):
        options = {**CogOptions().creation_options(), "OVERVIEW_RESAMPLING": resampling[name]}
        options.pop("OVERVIEWS")  # IGNORE_EXISTING: the copy builds its own overviews either way
        dst = folder / f"{name}.tif"
        dst.unlink(missing_ok=True)
        runs[f"write_{name}"] = measure(copy_command(outputs[name], dst, options))
    seconds = sum(r.seconds for r in runs.values())
    return {"tool": floor_tool(), "seconds": round(seconds, 2), "mp_per_s": round(pixels / seconds / 1e6, 3),
            "parts": {k: step_record(r, pixels) for k, r in runs.items()},
            "files": {name: str(folder / f"{name}.tif") for name in ("classes", "confidence")}}


# --------------------------------------------------------------------------------------------- the report
def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target: the figure, its peer, the ratio or value, and whether it is met."""
    small, large = results[0], results[-1]
    rows = []
    for name in STEPS:
        peak = large["steps"][name]["peak_rss_mib"]
        rows.append({"target": f"{name} peak RSS at {large['size']}² < 3 GB", "value": round(peak * 2**20 / 1e9, 2),
                     "limit": RSS_CAP / 1e9, "met": peak * 2**20 < RSS_CAP})
        if len(results) > 1:
            ratio = peak / small["steps"][name]["peak_rss_mib"]
            rows.append({"target": f"{name} peak RSS {large['size']}² / {small['size']}²", "value": round(ratio, 3),
                         "limit": RSS_RATIO_TARGET, "met": ratio <= RSS_RATIO_TARGET})
    for r in results:
        ratio = r["steps"]["predict"]["seconds"] / r["floor"]["seconds"]
        rows.append({"target": f"predict wall / I/O floor at {r['size']}²", "value": round(ratio, 3),
                     "limit": FLOOR_FACTOR, "met": ratio <= FLOOR_FACTOR})
    return rows


def table(results: list[dict[str, Any]]) -> str:
    """The figures as a markdown table, then the targets."""
    lines = ["| scene | step | wall s | MP/s | peak RSS MiB |", "|---|---|---|---|---|"]
    for r in results:
        rows = [(name, r["steps"][name]) for name in STEPS]
        rows += [(f"I/O floor ({r['floor']['tool']})", r["floor"]), *[(f"  floor: {k}", v) for k, v in
                                                                       r["floor"]["parts"].items()]]
        for name, s in rows:
            rss = f"{s['peak_rss_mib']:.0f}" if "peak_rss_mib" in s else ""
            lines.append(f"| {r['size']}² ({r['megapixels']:.0f} MP) | {name} | {s['seconds']:.1f} | "
                         f"{s['mp_per_s']:.2f} | {rss} |")
    lines += ["", "| target | value | limit | met |", "|---|---|---|---|"]
    lines += [f"| {t['target']} | {t['value']} | {t['limit']} | {'yes' if t['met'] else '**no**'} |"
              for t in targets(results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8192, 32768])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--predict-child", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.predict_child:
        catalog_dir, out, *width = args.predict_child
        predict_child(Path(catalog_dir), Path(out), int(width[0]) if width else None)
        return
    started = dt.datetime.now(dt.UTC)
    head = {"date": f"{started:%Y-%m-%d %H:%M} UTC", "machine": machine(), "load_before": os.getloadavg(),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}
    print(f"{head['date']}, {head['machine']}, load {head['load_before'][0]:.1f}", flush=True)
    results = []
    for size in sorted(args.sizes):
        print(f"{size}²: synth (cached), ingest, predict, vectorize, I/O floor", flush=True)
        results.append(chain(size, args.out / f"scene{size}"))
        steps = results[-1]["steps"]
        print("  " + ", ".join(f"{k} {v['seconds']:.1f} s / {v['peak_rss_mib']:.0f} MiB" for k, v in steps.items())
              + f"; floor {results[-1]['floor']['seconds']:.1f} s; {results[-1]['polygons']} polygons", flush=True)
    text = table(results)
    print(text)
    payload = {**head, "load_after": os.getloadavg(), "min_area": MIN_AREA, "simplify": SIMPLIFY,
               "results": results, "targets": targets(results)}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "results_" + "_".join(str(s) for s in sorted(args.sizes)) + ".json"
    (args.out / name).write_text(json.dumps(payload, indent=1))
    print(f"results in {args.out / name}")


if __name__ == "__main__":
    main()
