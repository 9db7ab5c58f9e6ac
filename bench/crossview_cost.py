"""Step time of crossview's cost options against a supervised step, on real Zion batches (issue 11, item 4).

The same measurement as ``bench/ssl_accuracy.py --probe`` (same model, patch, batches, one torch thread, round
robin in one process, data loading excluded, median), for each ``CrossViewConfig`` cost option in ``VARIANTS``.

    python bench/crossview_cost.py --catalog bench/out/ssl_accuracy/catalog   # an ingested Zion catalog
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS: dict[str, dict] = {  # row name: crossview strategy_params
    "crossview (2 views, 2 streams on w and s2)": {},
    "single_stream": {"single_stream": True},
    "strong_streams off": {"strong_streams": False},
    "strong_views 1": {"strong_views": 1},
    "strong_views 1, single_stream": {"strong_views": 1, "single_stream": True},
    "strong_views 1, strong_streams off": {"strong_views": 1, "strong_streams": False},
}


def main() -> None:
    import torch

    from geossl.catalog import load_catalog
    from geossl.data.module import SslDataModule, plan_splits
    from geossl.models import Segmenter
    from geossl.ssl import STRATEGIES
    from geossl.ssl.crossview import CrossViewConfig
    from geossl.train.config import TrainConfig
    from geossl.train.run import model_config

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--catalog", type=Path, required=True)
    p.add_argument("--encoder", default="tu-mobilenetv3_small_100")
    p.add_argument("--patch-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--unlabeled-batch-size", type=int, nargs="+", default=[8, 4])
    p.add_argument("--rounds", type=int, default=8)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cat = load_catalog(a.catalog)
    plan = plan_splits(cat, a.catalog, None, 0)
    print(f"load before {os.getloadavg()[0]:.1f}; patch {a.patch_size}, {a.encoder}, {a.batch_size} labeled")
    for n_u in a.unlabeled_batch_size:
        dm = SslDataModule(cat, a.catalog, plan, CrossViewConfig().data_spec(), a.patch_size, a.batch_size, n_u, 2)
        loaders = dm.train_dataloader()
        batch_l = next(iter(loaders["labeled"]))
        batch_u = {k: v for k, v in next(iter(loaders["unlabeled"])).items() if k != "truth"}
        setups = {}
        for name, params in {"supervised": None, **VARIANTS}.items():
            options = {"name": "supervised"} if params is None else {"name": "crossview", **params}
            cfg = TrainConfig(strategy=options, encoder=a.encoder, patch_size=a.patch_size, batch_size=a.batch_size,
                              decoder_channels=[64, 32, 16, 16, 16])
            model = Segmenter(model_config(cfg, cat)).train()
            strategy = STRATEGIES[cfg.strategy.name](model, cfg.strategy)
            setups[name] = (strategy, torch.optim.AdamW(strategy.trainable(), lr=1e-3))
        times: dict[str, list[float]] = {n: [] for n in setups}
        for r in range(a.rounds + 1):
            for name, (strategy, opt) in setups.items():
                t0 = time.perf_counter()
                out = strategy.training_step(batch_l, batch_u, 100, 1000, torch.Generator().manual_seed(r))
                opt.zero_grad()
                out.loss.backward()
                opt.step()
                if r:
                    times[name].append(time.perf_counter() - t0)
        sup = statistics.median(times["supervised"])
        print(f"{a.batch_size} labeled + {n_u} unlabeled (load {os.getloadavg()[0]:.1f}):")
        for name, t in times.items():
            print(f"  {name:<40} {statistics.median(t):6.3f} s  x{statistics.median(t) / sup:4.2f}")


if __name__ == "__main__":
    main()
