"""What ``geossl ingest`` can be asked: the options model its flags and the pipeline's ingest step come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from geossl.config import NO_FLAG, DataRootOption, Flag, SchedulerOption, StrictModel, WorkersOption
from geossl.io.cog import CogOptions, CompressionOption


class IngestSettings(StrictModel):
    """How the COGs are written: the options a pipeline's ingest step sets too."""

    compress: CompressionOption = CogOptions.compress


class IngestOptions(IngestSettings):
    """Options of one ingest run (everything but the manifest)."""

    out: Annotated[Path, Flag(metavar="DIRECTORY")] = Field(description="Output folder for COGs and catalog.json.")
    data_root: DataRootOption = None
    scheduler: SchedulerOption = None
    workers: WorkersOption = None
    blocksize: int = Field(default=CogOptions.blocksize, ge=64, le=4096, description="Tile size of the COGs in "
                                                                                     "pixels.")
    force: bool = Field(default=False, description="Ingest again even if the catalog is up to date.")
    quiet: Annotated[bool, NO_FLAG] = False

    def cog(self) -> CogOptions:
        """COG options for imagery."""
        return CogOptions(compress=self.compress, blocksize=self.blocksize)
