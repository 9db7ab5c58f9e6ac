"""What ``geossl predict`` can be asked: the options model its flags and the pipeline's predict step come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from geossl.config import NO_FLAG, Flag, StrictModel
from geossl.io.cog import CogOptions, CompressionOption


class PredictSettings(StrictModel):
    """How scenes are predicted and written: the options a pipeline's predict step sets too."""

    patch_size: int | None = Field(default=None, ge=32, description="Window size in pixels [default: the "
                                                                     "checkpoint's].")
    overlap: int | None = Field(default=None, ge=0, description="Overlap of neighbouring windows in pixels "
                                                                "[default: the checkpoint's].")
    batch_size: int = Field(default=8, ge=1, description="Windows per forward pass.")
    tta: bool = Field(default=False, description="Average the predictions of the four flips of each window.")
    probabilities: bool = Field(default=False, description="Also write per-class probabilities (one band per "
                                                           "class).")
    block_width: int = Field(default=8192, ge=256, description="Scenes wider than this are cut into column "
                                                               "blocks predicted as separate tasks.")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where the model runs.")
    ignore_band_names: bool = Field(default=False, description="Trust the scene's band order even when its band "
                                                               "names differ from the checkpoint's.")
    resample: bool = Field(default=False, description="Read a scene whose CRS or pixel size differs from the "
                                                      "model's onto the model's grid (outputs on that grid).")
    compress: CompressionOption = CogOptions.compress


class PredictOptions(PredictSettings):
    """Options of one prediction run (everything but the checkpoint and the scenes).

    ``threads``: the model's CPU threads per block, default every core this process may use (counted where the
    run starts). With ``workers`` blocks at once, ``threads = cores / workers`` keeps the cores from being
    oversubscribed; the pixels depend on ``threads`` (float sums split differently), never on the scheduler.
    """

    out: Path = Field(description="Output folder (created; existing files of the same scenes are replaced).")
    scheduler: Annotated[str | None, Flag(metavar="ADDRESS")] = Field(
        default=None, description="An existing dask.distributed scheduler (tcp://host:port) instead of a "
                                  "LocalCluster; 'synchronous': no Dask, every block in this process.")
    workers: int | None = Field(default=None, ge=1, description="Blocks predicted at once by the local Dask "
                                "cluster, each with --threads threads for the model (set --threads to cores/N to "
                                "keep the cores from being oversubscribed) [default: 1].")
    threads: int | None = Field(default=None, ge=1, description="The model's CPU threads per block: the pixels "
                                "depend on it, never on the scheduler or --workers [default: every core].")
    quiet: Annotated[bool, NO_FLAG] = False
