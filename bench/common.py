"""Helpers shared by the benchmarks: timed subprocess runs with peak memory, machine description."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
GEOSSL = [sys.executable, "-m", "geossl.cli"]


@dataclass
class Run:
    """Wall time (s) and peak resident memory (bytes, the process and its children) of one command."""

    seconds: float
    peak_rss: int


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    """Run ``cmd``, polling the memory of its process tree every 50 ms; raise if it fails."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return Run(seconds, peak)


def machine() -> str:
    """One line describing this machine."""
    mem = psutil.virtual_memory().total / 2**30
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.python_implementation()} " \
           f"{platform.python_version()}"


def synth_scene(size: int, tile: int = 512) -> Path:
    """A synthetic scene of ``size``² (cached under bench/out)."""
    folder = OUT / f"synth{size}"
    if not (folder / "scene.tif").is_file():
        subprocess.run([*GEOSSL, "-q", "synth", str(folder), "--size", str(size), "--tile", str(tile)], check=True)
    return folder
