"""Which strong views keep the label? Each augmentation's kept share of a trained model's per-pixel prediction.

For a trained supervised model (``MODEL``, e.g. a bench run's ``model.pt``) and its catalog, ``--batches``
batches of unlabeled training windows: the share of each class's predicted pixels whose prediction survives
each augmentation alone (at probability 1) and the whole strong view (CutMix aside), for the views of both band
kinds (``rgb`` and ``multispectral`` defaults, :class:`geossl.data.views.ViewConfig`). The peer of each kind is
the other kind on the same pixels. geossl.ssl.agreement defines the measure.

    python bench/view_agreement.py bench/out/fair_zanzibar/runs/supervised_1_8-seed0/model.pt \\
        data_manifests/fair_zanzibar.yaml bench/out/fair_zanzibar/catalog
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geossl.catalog import load_catalog  # noqa: E402
from geossl.data.module import SslDataModule, counted_plan  # noqa: E402
from geossl.data.spec import DataSpec  # noqa: E402
from geossl.data.views import ViewConfig  # noqa: E402
from geossl.models import load_bundle  # noqa: E402
from geossl.ssl.agreement import AUGMENTATIONS, STRONG, Agreement, view_agreement  # noqa: E402
from geossl.train.inputs import trained_regions  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", type=Path)
    p.add_argument("manifest", type=Path)
    p.add_argument("catalog", type=Path)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    bundle, model = load_bundle(a.model)
    catalog = load_catalog(a.catalog)
    plan = counted_plan(catalog, a.catalog, trained_regions(bundle, a.model, catalog, a.catalog))
    data = SslDataModule(catalog, a.catalog, plan, DataSpec(unlabeled=True), bundle.patch_size, 1, a.batch_size,
                         a.batches, pseudo_truth=False)
    names = [c.name for c in bundle.classes]
    totals: dict[str, Agreement] = {}
    for i, batch in enumerate(data.train_dataloader()["unlabeled"]):
        for kind in ("rgb", "multispectral"):
            views = ViewConfig(kind=kind).resolved()
            got = view_agreement(model, batch["image"], batch["valid"], views, len(names),
                                 torch.Generator().manual_seed(i))
            totals[kind] = got if kind not in totals else _add(totals[kind], got)
    print(f"kept share of {bundle.strategy} {a.model} predictions ({a.batches} x {a.batch_size} unlabeled windows "
          f"of {bundle.patch_size} px; bands {bundle.bands}, auto kind: {ViewConfig().resolved(bundle.bands).kind})")
    print("| views | augmentation | all | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for kind, agreement in totals.items():
        for aug in (*AUGMENTATIONS, STRONG):
            shares = " | ".join("–" if np.isnan(v) else f"{100 * v:.1f}" for v in agreement.share(aug))
            print(f"| {kind} | {aug} | {100 * agreement.overall(aug):.1f} | {shares} |")


def _add(x: Agreement, y: Agreement) -> Agreement:
    return Agreement(predicted={k: x.predicted[k] + y.predicted[k] for k in x.predicted},
                     kept={k: x.kept[k] + y.kept[k] for k in x.kept})


if __name__ == "__main__":
    main()
