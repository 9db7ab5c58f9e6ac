"""Benchmark: ``geossl vectorize`` against ``gdal_polygonize.py -f GPKG`` on the same ~25 MP class raster.

The raster is the Zion NLCD label map (on the Landsat grid) tiled 4 x 4 (4512 x 5712 px, 30 m); without the
shared data, a synthetic speckled class map of the same size. Both tools polygonize it without sieve or
simplification, in this run, one after the other; the script checks that they give the same number of
polygons and the same total area, and prints geossl's wall time as a fraction of gdal's (target <= 0.35 on
2 cores). It also times a run with sieve and simplification (``--min-area 3600 --simplify 15``) beside the
plain one, counts how many pixels the tiled sieve assigns differently from one whole-raster GDAL sieve, and
runs both again on the map tiled 8 x 8 (4x the pixels). Targets for sieve + simplify: wall time <= 2x the plain
run's on the same raster (measured one after the other), peak RSS at 8 x 8 <= 1.2x at 4 x 4. At 30 m pixels a
15 m tolerance removes only what two pixel steps' corners (450 m² > 15²) cannot block, so a run at 30 m
(``SIMPLIFY_HARD``), where GEOS removes most staircase corners, is timed too, for information.

    python bench/vectorize.py [--data-root ../shared/data] [--out bench/out/vectorize] [--skip-large]
                              [--skip-gdal]

Each measured run is a child process (``--child``), so peak RSS is that run's alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
import yaml

ROOT = Path(__file__).resolve().parents[1]
ZION_LABELS = "zion/nlcd2011_zion_8class_on_landsat_grid.tif"
MIN_AREA = 4 * 900.0  # m²: regions under 4 Landsat pixels are sieved
SIMPLIFY = 15.0  # m: half a pixel
SIMPLIFY_HARD = 30.0  # m: one pixel


def make_raster(data_root: Path, out: Path, repeat: int) -> Path:
    """The Zion labels tiled ``repeat`` x ``repeat`` (or a synthetic speckled map), with class metadata."""
    src = data_root / ZION_LABELS
    path = out / f"classes_{repeat}x{repeat}.tif"
    if path.exists():
        return path
    classes = yaml.safe_load((ROOT / "data_manifests" / "zion.yaml").read_text())["classes"]
    if src.is_file():
        with rasterio.open(src) as ds:
            tile, crs, transform = ds.read(1), ds.crs, ds.transform
    else:
        rng = np.random.default_rng(0)
        coarse = rng.integers(1, 9, (1428 // 12 + 1, 1128 // 12 + 1))
        tile = np.kron(coarse, np.ones((12, 12), np.uint8))[:1428, :1128].astype(np.uint8)
        speck = rng.random(tile.shape) < 0.15
        tile[speck] = rng.integers(1, 9, int(speck.sum()))
        crs, transform = "EPSG:32612", rasterio.transform.from_origin(301905.0, 4154085.0, 30.0, 30.0)
    h, w = tile.shape
    profile = {"driver": "GTiff", "height": h * repeat, "width": w * repeat, "count": 1, "dtype": "uint8",
               "crs": crs, "transform": transform, "nodata": 0, "tiled": True, "blockxsize": 256,
               "blockysize": 256, "compress": "deflate"}
    row = np.tile(tile, (1, repeat))
    with rasterio.open(path, "w", **profile) as dst:
        for i in range(repeat):
            dst.write(row, 1, window=rasterio.windows.Window(0, i * h, w * repeat, h))
        dst.update_tags(1, classes=json.dumps(classes))
    return path


def child(args: argparse.Namespace) -> None:
    """One measured geossl run in this process: print wall time and peak RSS as JSON."""
    from geossl.vectorize.run import VectorizeOptions, vectorize

    start = time.perf_counter()
    summary = vectorize(Path(args.raster), VectorizeOptions(out=Path(args.dst), overwrite=True, quiet=True,
                                                            workers=args.workers, min_area=args.min_area,
                                                            simplify=args.simplify))
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": wall, "peak_rss_mib": peak_rss_mib(), "polygons": summary.polygons}))


def peak_rss_mib() -> float:
    """This process's peak resident memory, MiB.

    Linux's ``VmHWM`` belongs to the address space exec() made; ``ru_maxrss`` survives exec(), so a child would
    report the parent's size at fork when that was larger (this script's parent reads whole layers).
    """
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_geossl(raster: Path, dst: Path, workers: int, min_area: float = 0.0, simplify: float = 0.0) -> dict:
    cmd = [sys.executable, __file__, "--child", "--raster", str(raster), "--dst", str(dst), "--workers",
           str(workers), "--min-area", str(min_area), "--simplify", str(simplify)]
    cpu = _children_cpu()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ | {"PYTHONWARNINGS": "ignore"})
    return json.loads(out.stdout.strip().splitlines()[-1]) | {"cpu_s": _children_cpu() - cpu}


def run_gdal(raster: Path, dst: Path) -> dict:
    dst.unlink(missing_ok=True)
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(["gdal_polygonize.py", "-q", "-f", "GPKG", str(raster), str(dst)], check=True)
    wall = time.perf_counter() - start
    info = pyogrio.read_info(dst)
    return {"wall_s": wall, "cpu_s": _children_cpu() - cpu, "polygons": int(info["features"])}


def total_area(path: Path, layer: str | None = None) -> float:
    geoms = pyogrio.read_dataframe(path, layer=layer, columns=[]).geometry.values
    return float(shapely.area(geoms).sum())


def sieve_agreement(raster: Path, out: Path, workers: int) -> dict:
    """Pixels the tiled sieve changes, and assigns, differently from GDAL's sieve of the whole raster."""
    from rasterio.features import sieve

    from geossl.io.lazy import block_aligned_chunks
    from geossl.parallel import dask_client
    from geossl.vectorize.source import min_area_pixels, open_class_raster
    from geossl.windows import Tiling

    info = open_class_raster(raster)
    threshold = min_area_pixels(MIN_AREA, info.pixel_area)
    rows, cols = block_aligned_chunks(info.grid.height, info.grid.width, info.block)
    tiling = Tiling(info.grid.height, info.grid.width, rows[0], cols[0])
    tiled_path = out / "sieved_tiled.tif"
    from geossl.vectorize.sieve import sieve_raster

    with dask_client(None, workers) as client:
        sieve_raster(client, info, tiling, threshold, tiled_path, quiet=True)
    with rasterio.open(raster) as ds:
        data, valid = ds.read(1), ds.read_masks(1) > 0
    whole = sieve(data, size=threshold, mask=valid.astype(np.uint8), connectivity=4)
    with rasterio.open(tiled_path) as ds:
        tiled = ds.read(1)
    tiled_path.unlink()
    changed_whole, changed_tiled = whole != data, tiled != data
    return {"threshold_px": threshold, "pixels": int(valid.sum()), "changed_whole": int(changed_whole.sum()),
            "changed_differently": int((changed_whole != changed_tiled).sum()),
            "assigned_differently": int((whole != tiled).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "vectorize")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true", help="skip the 4x raster (peak RSS)")
    parser.add_argument("--ratio-only", action="store_true", help="only the comparison with gdal_polygonize")
    parser.add_argument("--skip-gdal", action="store_true", help="skip gdal_polygonize (the slowest part)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--raster", help=argparse.SUPPRESS)
    parser.add_argument("--dst", help=argparse.SUPPRESS)
    parser.add_argument("--min-area", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--simplify", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if shutil.which("gdal_polygonize.py") is None and not args.skip_gdal:
        sys.exit("gdal_polygonize.py not found (Debian: apt-get install gdal-bin)")
    args.out.mkdir(parents=True, exist_ok=True)
    source = "zion 4x4" if (args.data_root / ZION_LABELS).is_file() else "synthetic speckle"
    raster = make_raster(args.data_root, args.out, 4)
    with rasterio.open(raster) as ds:
        megapixels = ds.width * ds.height / 1e6
    print(f"raster: {raster.name} ({source}), {megapixels:.1f} MP; load average {os.getloadavg()[0]:.1f}")
    results: dict = {"raster": source, "megapixels": megapixels, "workers": args.workers,
                     "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    ours = run_geossl(raster, args.out / "geossl.gpkg", args.workers)
    print(f"geossl vectorize:   {ours['wall_s']:.1f} s (CPU {ours['cpu_s']:.1f} s), {ours['polygons']:,} polygons, "
          f"peak RSS {ours['peak_rss_mib']:.0f} MiB", flush=True)
    results["geossl"] = ours
    if not args.skip_gdal:
        results.update(compare_gdal(raster, args.out, ours))
    if args.ratio_only:
        return

    cleaned = run_geossl(raster, args.out / "geossl_clean.gpkg", args.workers, MIN_AREA, SIMPLIFY)
    print(f"geossl with --min-area {MIN_AREA:g} --simplify {SIMPLIFY:g}: {cleaned['wall_s']:.1f} s "
          f"(CPU {cleaned['cpu_s']:.1f} s), {cleaned['polygons']:,} polygons, peak RSS {cleaned['peak_rss_mib']:.0f} "
          f"MiB; {_versus(cleaned, ours)} (target <= 2)", flush=True)
    hard = run_geossl(raster, args.out / "geossl_hard.gpkg", args.workers, MIN_AREA, SIMPLIFY_HARD)
    print(f"geossl with --min-area {MIN_AREA:g} --simplify {SIMPLIFY_HARD:g}: {hard['wall_s']:.1f} s "
          f"(CPU {hard['cpu_s']:.1f} s), {hard['polygons']:,} polygons; {_versus(hard, ours)}", flush=True)
    agreement = sieve_agreement(raster, args.out, args.workers)
    print(f"tiled vs whole-raster sieve: {agreement}", flush=True)
    results.update(sieve_simplify=cleaned, simplify_hard=hard, sieve_agreement=agreement)

    if not args.skip_large:
        results.update(large_runs(args, ours, cleaned))
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


def large_runs(args: argparse.Namespace, ours: dict, cleaned: dict) -> dict:
    """Plain and sieve + simplify runs on the map tiled 8 x 8, against the 4 x 4 runs ``ours`` and ``cleaned``."""
    big = make_raster(args.data_root, args.out, 8)
    large = run_geossl(big, args.out / "geossl_4x.gpkg", args.workers)
    print(f"4x raster: {large['wall_s']:.1f} s (CPU {large['cpu_s']:.1f} s), {large['polygons']:,} polygons, "
          f"peak RSS {large['peak_rss_mib']:.0f} MiB ({large['peak_rss_mib'] / ours['peak_rss_mib']:.2f}x the 1x "
          "run)", flush=True)
    large_clean = run_geossl(big, args.out / "geossl_4x_clean.gpkg", args.workers, MIN_AREA, SIMPLIFY)
    rss_ratio = large_clean["peak_rss_mib"] / cleaned["peak_rss_mib"]
    print(f"4x raster with --min-area {MIN_AREA:g} --simplify {SIMPLIFY:g}: {large_clean['wall_s']:.1f} s "
          f"(CPU {large_clean['cpu_s']:.1f} s), {large_clean['polygons']:,} polygons, peak RSS "
          f"{large_clean['peak_rss_mib']:.0f} MiB = {rss_ratio:.2f}x the 1x run (target <= 1.2); "
          f"{_versus(large_clean, large)} (target <= 2)", flush=True)
    return {"large_4x": large, "large_4x_sieve_simplify": large_clean, "simplify_rss_ratio_4x": rss_ratio}


def compare_gdal(raster: Path, out: Path, ours: dict) -> dict:
    """Run gdal_polygonize.py on ``raster``, check it agrees with geossl's run, print the time ratio."""
    gdal = run_gdal(raster, out / "gdal.gpkg")
    print(f"gdal_polygonize.py: {gdal['wall_s']:.1f} s (CPU {gdal['cpu_s']:.1f} s), {gdal['polygons']:,} polygons",
          flush=True)
    area_gdal, area_ours = total_area(out / "gdal.gpkg"), total_area(out / "geossl.gpkg", "geossl")
    same_count = gdal["polygons"] == ours["polygons"]
    area_rel = abs(area_ours - area_gdal) / area_gdal
    ratio = ours["wall_s"] / gdal["wall_s"]
    print(f"same polygon count: {same_count}; total area {area_ours:,.0f} m2 vs {area_gdal:,.0f} m2 "
          f"(relative difference {area_rel:.1e})")
    print(f"ratio geossl / gdal = {ratio:.3f} (target <= 0.35); CPU time ratio {ours['cpu_s'] / gdal['cpu_s']:.3f}",
          flush=True)
    if not same_count or area_rel > 1e-9:
        sys.exit("geossl and gdal_polygonize disagree")
    return {"gdal": gdal, "same_count": same_count, "area_relative_difference": area_rel, "ratio": ratio}


def _versus(run: dict, plain: dict) -> str:
    """``run``'s wall and CPU time against the plain run's."""
    return (f"{run['wall_s'] / plain['wall_s']:.2f}x the plain run's wall time, "
            f"{run['cpu_s'] / plain['cpu_s']:.2f}x its CPU time")


if __name__ == "__main__":
    main()
