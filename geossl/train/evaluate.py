"""``geossl evaluate``: a trained model against one split of an ingested catalog.

Every pixel of the split is predicted once, on a grid of non-overlapping windows of the model's patch size
(:class:`geossl.data.samplers.RegionGridSampler`), and compared with the labels: macro mIoU, per-class IoU,
overall accuracy, kappa and the confusion matrix (``metrics.json``, ``confusion.png``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geossl.catalog import CATALOG_NAME
from geossl.data.module import split_loader
from geossl.data.regions import split_regions
from geossl.errors import InputError
from geossl.io.atomic import publish, staging_dir
from geossl.io.names import METRICS_FILE
from geossl.models import load_bundle
from geossl.train.config import EvaluateOptions
from geossl.train.inputs import check_bundle, ensure_catalog
from geossl.train.metrics import confusion_matrix, segmentation_metrics

log = logging.getLogger(__name__)

#: The confusion matrix plot ``geossl evaluate`` writes beside its metrics (:data:`~geossl.io.names.METRICS_FILE`).
CONFUSION_FILE = "confusion.png"


@torch.no_grad()
def evaluate(checkpoint: Path, manifest_path: Path, catalog_dir: Path, options: EvaluateOptions) -> dict[str, Any]:
    """Write ``metrics.json`` and ``confusion.png`` (:data:`CONFUSION_FILE`) into ``options.out``; return metrics."""
    split, batch_size = options.split, options.batch_size
    out = options.folder(checkpoint)
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    bundle, model = load_bundle(checkpoint)
    manifest, catalog, root = ensure_catalog(manifest_path, catalog_dir, options.data_root, options.quiet)
    check_bundle(bundle, checkpoint, manifest_path, manifest, catalog)
    regions = [r for r in split_regions(catalog) if r.split == split]
    if not regions:
        raise InputError(root / CATALOG_NAME, f"the catalog has no '{split}' region")
    k = len(bundle.classes)
    cm = torch.zeros(k, k, dtype=torch.long)
    for batch in split_loader(catalog, root, regions, bundle.patch_size, batch_size):
        cm += confusion_matrix(model(batch["image"]).argmax(dim=1), batch["mask"], k)
    names = [c.name for c in bundle.classes]
    metrics = segmentation_metrics(cm, names)
    metrics.update({"split": split, "checkpoint": str(checkpoint), "strategy": bundle.strategy,
                    "encoder": bundle.model.encoder, "classes": names})
    with staging_dir(out) as stage:
        (stage / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
        plot_confusion(np.asarray(metrics["confusion_matrix"]), names, stage / CONFUSION_FILE,
                       title=f"{split}: mIoU {100 * metrics['miou']:.1f}, OA {100 * metrics['oa']:.1f}")
        publish(stage, out, [METRICS_FILE, CONFUSION_FILE])
    log.info("%s split: mIoU %.3f, OA %.3f, kappa %.3f over %d pixels -> %s", split, metrics["miou"],
             metrics["oa"], metrics["kappa"], metrics["pixels"], out)
    return metrics


def plot_confusion(cm: np.ndarray, names: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (recall per true class) with the pixel counts, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    size = 1.0 + 0.7 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, f"{v}", ha="center", va="center", fontsize=7,
                color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, label="share of true class")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
