"""``geossl evaluate``: metrics of a trained model on one split."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import catalog_option, data_root_option, is_quiet, threads_option


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("manifest", type=click.Path(path_type=Path, dir_okay=False))
@catalog_option
@click.option("--split", type=click.Choice(["labeled", "unlabeled", "val", "test"]), default="test",
              show_default=True, help="Which split's regions to evaluate on.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Folder for metrics.json and confusion.png [default: beside CHECKPOINT, eval-SPLIT].")
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@threads_option
@data_root_option
@click.pass_context
def evaluate(ctx: click.Context, checkpoint: Path, manifest: Path, catalog: Path, split: str, out: Path | None,
             batch_size: int, threads: int | None, data_root: Path | None) -> None:
    """Evaluate CHECKPOINT (model.pt or a .ckpt) on the MANIFEST's catalog: mIoU, IoU, OA, kappa."""
    from geossl.train.evaluate import evaluate as run_evaluate

    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    out = out if out is not None else checkpoint.parent / f"eval-{split}"
    metrics = run_evaluate(checkpoint, manifest, catalog, split, out, data_root, batch_size, is_quiet(ctx))
    click.echo(f"{split}: mIoU {metrics['miou']:.4f} OA {metrics['oa']:.4f} kappa {metrics['kappa']:.4f} -> {out}")
