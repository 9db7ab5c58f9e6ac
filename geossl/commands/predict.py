"""``geossl predict``: a checkpoint and scenes → class, confidence (and probability) COGs with styles."""

from __future__ import annotations

from pathlib import Path

import click

from geossl.commands.options import is_quiet, scheduler_options_with, threads_option


@click.command()
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("scenes", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True,
              help="Output folder (created; existing files of the same scenes are replaced).")
@click.option("--patch-size", type=click.IntRange(min=32), default=None,
              help="Window size in pixels [default: the checkpoint's].")
@click.option("--overlap", type=click.IntRange(min=0), default=None,
              help="Overlap of neighbouring windows in pixels [default: the checkpoint's].")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True,
              help="Windows per forward pass.")
@click.option("--tta", is_flag=True, help="Average the predictions of the four flips of each window.")
@click.option("--probabilities", is_flag=True, help="Also write per-class probabilities (one band per class).")
@click.option("--block-width", type=click.IntRange(min=256), default=8192, show_default=True,
              help="Scenes wider than this are cut into column blocks predicted as separate tasks.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where the model runs.")
@click.option("--ignore-band-names", is_flag=True,
              help="Trust the scene's band order even when its band names differ from the checkpoint's.")
@click.option("--compress", type=click.Choice(["ZSTD", "DEFLATE", "LZW", "NONE"], case_sensitive=False),
              default="ZSTD", show_default=True, help="COG compression.")
@threads_option
@scheduler_options_with(
    "Blocks predicted at once by the local Dask cluster, each with --threads threads for the model (set "
    "--threads to cores/N to keep the cores from being oversubscribed) [default: 1].",
    "An existing dask.distributed scheduler (tcp://host:port) instead of a LocalCluster; 'synchronous': "
    "no Dask, every block in this process.")
@click.pass_context
def predict(ctx: click.Context, checkpoint: Path, scenes: tuple[Path, ...], out: Path, patch_size: int | None,
            overlap: int | None, batch_size: int, tta: bool, probabilities: bool, block_width: int, device: str,
            ignore_band_names: bool, compress: str, threads: int | None, scheduler: str | None, workers: int | None
            ) -> None:
    """Predict land cover over SCENES with CHECKPOINT; write COGs, QGIS styles and STAC Items into --out.

    Blocks (column strips of wide scenes) and scenes run as Dask tasks; on an existing cluster the checkpoint,
    scenes and --out must be on paths its workers can read and write.
    """
    from geossl.predict.run import PredictOptions
    from geossl.predict.run import predict as run_predict

    options = PredictOptions(out=out, patch_size=patch_size, overlap=overlap, batch_size=batch_size, tta=tta,
                             probabilities=probabilities, block_width=block_width, device=device,
                             ignore_band_names=ignore_band_names, compress=compress.upper(), scheduler=scheduler,
                             threads=threads, workers=workers, quiet=is_quiet(ctx))
    for item in run_predict(checkpoint, list(scenes), options):
        click.echo(str(out / item["assets"]["classes"]["href"]))
