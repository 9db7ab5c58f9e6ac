"""Cost of one `geossl pretrain` step on Zion, per method, beside a supervised U-Net step on the same windows.

    python bench/pretrain.py --data-root ../shared/data            # tu-resnet18, patch 64, batch 32, 1 thread

Each method runs ``--steps`` optimizer steps through Lightning (as `geossl pretrain` does); a step's time is
from Lightning's batch start to its end (forward, backward, optimizer; the batch is already read), the median
after ``--warmup`` steps. Reading a batch is timed on its own. The supervised reference is a U-Net with the
same encoder (forward, cross-entropy on random labels, backward, AdamW) on one batch of the same windows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from geossl.catalog import load_catalog
from geossl.models import ModelConfig, Segmenter
from geossl.pretrain.config import PretrainConfig
from geossl.pretrain.data import window_loader
from geossl.pretrain.tasks import build_task

ROOT = Path(__file__).resolve().parents[1]


class StepTimer(pl.Callback):
    """Seconds of every training batch, from its start to its end (data loading excluded)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0 = 0.0

    def on_train_batch_start(self, *args: Any) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, *args: Any) -> None:
        self.times.append(time.perf_counter() - self._t0)


def method_step(config: PretrainConfig, catalog_dir: Path, warmup: int) -> float:
    """Median seconds of one optimizer step of ``config.method``."""
    catalog = load_catalog(catalog_dir)
    loader = window_loader(catalog, catalog_dir.absolute(), config.patch_size, config.batch_size,
                           config.max_steps, config.seed)
    timer = StepTimer()
    trainer = pl.Trainer(accelerator="cpu", max_steps=config.max_steps, max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[timer])
    trainer.fit(build_task(config, len(catalog.bands)), train_dataloaders=loader)
    return statistics.median(timer.times[warmup:])


def reading_and_supervised(config: PretrainConfig, catalog_dir: Path, rounds: int) -> tuple[float, float]:
    """Median seconds to read one batch of windows, and of one supervised U-Net step on such a batch."""
    catalog = load_catalog(catalog_dir)
    loader = window_loader(catalog, catalog_dir.absolute(), config.patch_size, config.batch_size, rounds + 1,
                           config.seed)
    reads, batches = [], []
    t0 = time.perf_counter()
    for batch in loader:
        reads.append(time.perf_counter() - t0)
        batches.append(batch["image"])
        t0 = time.perf_counter()
    model = Segmenter(ModelConfig(encoder=config.encoder, in_channels=len(catalog.bands),
                                  num_classes=len(catalog.classes)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    steps = []
    for x in batches:
        labels = torch.randint(0, len(catalog.classes), (x.shape[0], *x.shape[2:]))
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps.append(time.perf_counter() - t0)
    return statistics.median(reads[1:]), statistics.median(steps[1:])


def main() -> None:
    """Ingest Zion (once), time each method and the supervised reference, print and save the figures."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "pretrain")
    p.add_argument("--encoder", default=PretrainConfig.model_fields["encoder"].default)
    p.add_argument("--patch-size", type=int, default=PretrainConfig.model_fields["patch_size"].default)
    p.add_argument("--batch-size", type=int, default=PretrainConfig.model_fields["batch_size"].default)
    p.add_argument("--steps", type=int, default=8, help="steps per method (the first --warmup are not timed)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--methods", nargs="*", default=["moco", "simclr", "byol"])
    a = p.parse_args()
    if not (a.data_root / "zion" / "landsat8_zion_20150818_B2B3B4B5.tif").is_file():
        raise SystemExit(f"Zion data not found under {a.data_root}/zion")
    catalog = a.out / "catalog"
    subprocess.run([sys.executable, "-m", "geossl.cli", "-q", "ingest", str(ROOT / "data_manifests" / "zion.yaml"),
                    "--data-root", str(a.data_root), "--out", str(catalog), "--workers", "2"], check=True)
    torch.set_num_threads(a.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", module="lightning")
    header = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
              "load_before": os.getloadavg(), "encoder": a.encoder, "patch_size": a.patch_size,
              "batch_size": a.batch_size, "threads": a.threads, "steps": a.steps, "warmup": a.warmup}
    base = {"encoder": a.encoder, "patch_size": a.patch_size, "batch_size": a.batch_size, "max_steps": a.steps}
    read, supervised = reading_and_supervised(PretrainConfig(**base), catalog, a.steps)
    times = {m: method_step(PretrainConfig(**base, method=m), catalog, a.warmup) for m in a.methods}
    print(f"{a.encoder}, {a.batch_size} windows of {a.patch_size} px, {a.threads} thread(s), load "
          f"{header['load_before'][0]:.1f}: reading a batch {read:.3f} s; supervised U-Net step {supervised:.3f} s")
    for method, t in times.items():
        print(f"  {method:<7} {t:.3f} s/step  x{t / supervised:.2f} supervised; 1000 steps ≈ "
              f"{math.ceil(1000 * (t + read) / 60)} min with reading")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps({"header": header, "read_s": read, "supervised_s": supervised,
                                                    "step_s": times, "load_after": os.getloadavg()}, indent=2))


if __name__ == "__main__":
    main()
