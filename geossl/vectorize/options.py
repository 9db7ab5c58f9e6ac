"""What ``geossl vectorize`` can be asked: the options model its flags and the pipeline's vectorize step come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from geossl.config import NO_FLAG, Flag, SchedulerOption, StrictModel, WorkersOption
from geossl.io.lazy import TARGET_CHUNK_PIXELS
from geossl.vectorize.write import FORMATS


def known_format(name: str) -> str:
    """``name`` as a key of :data:`~geossl.vectorize.write.FORMATS` (any case), or a ValueError listing them."""
    if name.lower() not in FORMATS:
        raise ValueError(f"unknown format '{name}'; choose one of {', '.join(FORMATS)}")
    return name.lower()


#: An output format by name (``gpkg``, ``fgb``...).
VectorFormat = Annotated[str, AfterValidator(known_format), Flag(metavar="|".join(FORMATS))]


class VectorizeSettings(StrictModel):
    """How polygons are made: the options a pipeline's vectorize step sets too."""

    min_area: float = Field(default=0.0, ge=0, description="Sieve: merge regions smaller than this (map units², "
                                                           "e.g. m²) into a neighbour first.")
    simplify: float = Field(default=0.0, ge=0, description="Simplify the polygons as one coverage with this "
                                                           "tolerance (map units); 0 keeps pixel edges.")


class VectorizeOptions(VectorizeSettings):
    """Options of one vectorize run (the command line's, validated at the edge)."""

    out: Path = Field(description="Output vector file; the format follows the suffix unless --format is given.")
    format: VectorFormat | None = Field(default=None, description="Output format [default: from the --out "
                                                                  "suffix].")
    confidence: Path | None = Field(default=None, description="A confidence raster on the same grid: adds each "
                                                              "polygon's mean confidence.")
    classes: Path | None = Field(default=None, description="Take class names and colours from this data "
                                                           "manifest instead of the raster's metadata.")
    overwrite: bool = Field(default=False, description="Replace --out (and its .qml) if they exist.")
    scheduler: SchedulerOption = None
    workers: WorkersOption = None
    quiet: Annotated[bool, NO_FLAG] = False
    tile_pixels: Annotated[int, NO_FLAG] = TARGET_CHUNK_PIXELS
