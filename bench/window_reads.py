"""Reading training windows: geossl's catalog datasets against torchgeo's own lookup, on the same windows.

Every training step reads its windows (image and labels) through :mod:`geossl.data.rasters`. torchgeo's
``RasterDataset.__getitem__`` filters its GeoDataFrame index for every window; geossl's catalog datasets look the
files up in cached arrays and then read them with torchgeo's own ``_merge_files``, so the pixels are the same
(checked here on every window, and in tests/test_rasters_lookup.py). Both read the same random windows, round
robin, in one process with one torch thread (as ``geossl train --threads 1``). Prints milliseconds per window
(image + labels) and the ratio geossl / torchgeo.

    python bench/window_reads.py --data-root ../shared/data     # the Zion catalog (ingested under bench/out)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchgeo.datasets import RasterDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
from common import GEOSSL, OUT  # noqa: E402

from geossl.catalog import load_catalog  # noqa: E402
from geossl.data.rasters import catalog_rasters  # noqa: E402


def windows(dataset: RasterDataset, n: int, size: int, seed: int) -> list[tuple[slice, slice]]:
    """``n`` random windows of ``size`` pixels on the dataset's grid, inside its bounds."""
    x, y, _ = dataset.bounds
    xres, yres = dataset.res
    cols, rows = round((x.stop - x.start) / xres) - size, round((y.stop - y.start) / yres) - size
    rng = np.random.default_rng(seed)
    out = []
    for c, r in zip(rng.integers(0, cols, n), rng.integers(0, rows, n), strict=True):
        xmin, ymax = x.start + c * xres, y.stop - r * yres
        out.append((slice(xmin, xmin + size * xres), slice(ymax - size * yres, ymax)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--catalog", type=Path, default=None, help="an ingested catalog (default: ingest Zion)")
    p.add_argument("--windows", type=int, default=300)
    p.add_argument("--size", type=int, default=96)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(1)
    catalog = a.catalog or OUT / "window_reads" / "catalog"
    if not (catalog / "catalog.json").is_file():
        import subprocess

        subprocess.run([*GEOSSL, "-q", "ingest", str(ROOT / "data_manifests" / "zion.yaml"), "--data-root",
                        str(a.data_root), "--out", str(catalog), "--workers", "2"], check=True)
    images, labels = catalog_rasters(load_catalog(catalog), catalog)
    datasets = [d for d in (images, labels) if d is not None]
    queries = windows(images, a.windows, a.size, seed=0)
    for q in queries:  # the same pixels, window by window
        for d in datasets:
            key = "image" if d.is_image else "mask"
            assert torch.equal(d[q][key], RasterDataset.__getitem__(d, q)[key]), f"window {q} differs"

    readers = {"torchgeo": lambda q: [RasterDataset.__getitem__(d, q) for d in datasets],
               "geossl": lambda q: [d[q] for d in datasets]}
    ms: dict[str, list[float]] = {name: [] for name in readers}
    for r in range(a.rounds):
        for name in sorted(readers, reverse=bool(r % 2)):  # alternate who goes first
            t0 = time.perf_counter()
            for q in queries:
                readers[name](q)
            ms[name].append(1000 * (time.perf_counter() - t0) / len(queries))
    med = {name: statistics.median(v) for name, v in ms.items()}
    result = {"catalog": str(catalog), "windows": a.windows, "size": a.size, "rounds": a.rounds,
              "ms_per_window": med, "ratio": med["geossl"] / med["torchgeo"], "rounds_ms": ms,
              "machine": platform.node(), "cpus": os.cpu_count(), "load": os.getloadavg()}
    (OUT / "window_reads").mkdir(parents=True, exist_ok=True)
    (OUT / "window_reads" / "results.json").write_text(json.dumps(result, indent=1))
    print(f"{a.windows} windows of {a.size} px (image + labels), median of {a.rounds} rounds, one torch thread:")
    for name, v in med.items():
        print(f"  {name:<9} {v:6.2f} ms per window")
    print(f"  ratio geossl / torchgeo: {result['ratio']:.2f}")


if __name__ == "__main__":
    main()
