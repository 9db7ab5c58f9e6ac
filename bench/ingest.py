"""Ingest benchmark: ``geossl ingest`` vs GDAL's own COG copy of the same file, in the same run.

On a generated 8192² 4-band uint16 tiled GeoTIFF, times (a) ``gdal_translate -of COG`` (Debian gdal-bin, when
installed), (b) ``rasterio.shutil.copy(..., driver="COG")`` (the GDAL inside rasterio, the same library geossl
uses) and (c) ``geossl ingest`` of that scene (COG with overviews + band statistics + catalog). Then peak RSS of
``geossl ingest`` on a 4096² and a 12288² scene, which must not grow with the scene.

Targets: ingest / GDAL copy ≤ 0.8; peak RSS ≤ 1.5 GB; RSS(12288²) / RSS(4096²) close to 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys

import yaml
from common import GEOSSL, OUT, ROOT, Run, machine, measure, synth_scene


def ingest_run(scene_dir, tag: str) -> Run:
    manifest = OUT / f"ingest-{tag}.yaml"
    manifest.write_text(yaml.safe_dump({
        "name": f"bench{tag}", "classes": [{"id": 1, "name": "a", "color": "#ff0000"}],
        "imagery": {"paths": [str(scene_dir / "scene.tif")], "bands": ["blue", "green", "red", "nir"]},
    }))
    out = OUT / f"ingest-{tag}"
    shutil.rmtree(out, ignore_errors=True)
    return measure([*GEOSSL, "-q", "ingest", str(manifest), "--out", str(out)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--small", type=int, default=4096)
    parser.add_argument("--large", type=int, default=12288)
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    scene = synth_scene(args.size)
    src = str(scene / "scene.tif")
    rows = []
    if shutil.which("gdal_translate"):
        gdal = measure(["gdal_translate", "-q", "-of", "COG", src, str(OUT / "gdal_cog.tif")])
        rows.append(("gdal_translate -of COG", gdal))
    copy = measure([sys.executable, "-c", "import rasterio.shutil, sys; "
                    "rasterio.shutil.copy(sys.argv[1], sys.argv[2], driver='COG')", src, str(OUT / "rio_cog.tif")])
    rows.append(("rasterio.shutil.copy COG", copy))
    ours = ingest_run(scene, str(args.size))
    rows.append(("geossl ingest", ours))

    small = ingest_run(synth_scene(args.small), str(args.small))
    large = ingest_run(synth_scene(args.large), str(args.large))

    lines = [f"### Ingest ({dt.datetime.now(dt.UTC):%Y-%m-%d}, {machine()})", "",
             f"Scene: synthetic {args.size}² × 4 bands uint16, 512² tiles, deflate.", "",
             "| command | wall s | peak RSS MB | geossl / this |", "|---|---|---|---|"]
    for name, run in rows:
        lines.append(f"| {name} | {run.seconds:.1f} | {run.peak_rss / 2**20:.0f} | {ours.seconds / run.seconds:.2f} |")
    lines += ["", f"Peak RSS of geossl ingest: {args.small}² {small.peak_rss / 2**20:.0f} MB "
                  f"({small.seconds:.1f} s), {args.large}² {large.peak_rss / 2**20:.0f} MB ({large.seconds:.1f} s): "
                  f"ratio {large.peak_rss / small.peak_rss:.2f} for {(args.large / args.small) ** 2:.0f}× the pixels.",
              ""]
    text = "\n".join(lines)
    print(text)
    if args.record:
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
