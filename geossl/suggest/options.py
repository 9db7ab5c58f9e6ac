"""What ``geossl suggest`` can be asked: the options model its flags and the pipeline's suggest step come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator

from geossl.classweights import ClassWeighting
from geossl.config import NO_FLAG, DataRootOption, Flag, StrictModel, ThreadsOption
from geossl.io.layers import LABEL_LAYER

#: Cells along a window's side: candidates step by an eighth of a window, so a window can start within
#: ``size / 8`` px of any edge of the unlabeled area (with half-window steps, a lake along a region's edge
#: could lie in the up to ``size / 2 - 1`` px that no candidate reaches).
CELLS_PER_WINDOW = 8  # --size must be a multiple of it
#: Per-pixel uncertainty measures (:mod:`geossl.suggest.uncertainty`).
Uncertainty = Literal["entropy", "margin"]
#: Per-pixel scores a window's priority averages: an uncertainty, or novelty (:mod:`geossl.suggest.novelty`).
Method = Literal[Uncertainty, "novelty"]
#: How windows are ranked: by uncertainty (:mod:`geossl.suggest.select`) or typicality (:mod:`.typical`).
Ranking = Literal["uncertainty", "typical"]
#: How the suggestions are kept apart (:mod:`geossl.suggest.select`).
Diversity = Literal["features", "classes", "none"]
#: The diversity each method gets unless ``--diversity`` says otherwise. Novelty distrusts the encoder's view
#: of a window, so encoder-feature distances would pass over the ground it finds (on Zion, the reservoir's
#: window fell from 5th to 17th), and by predicted class too (that ground is predicted as a common class).
PAIRED_DIVERSITY: dict[Method, Diversity] = {"entropy": "features", "margin": "features", "novelty": "none"}


class SuggestSettings(StrictModel):
    """What is suggested and how it is ranked: the options a pipeline's suggest step sets too."""

    n: int = Field(default=10, ge=1, description="Number of windows to suggest.")
    size: int = Field(default=64, ge=8, multiple_of=CELLS_PER_WINDOW,
                      description="Side of a suggested window in pixels.")
    ranking: Ranking = Field(default="uncertainty", description="uncertainty: the windows of the highest --method "
                             "score, kept apart by --diversity; typical: the most representative window of each of "
                             "the largest groups of look-alike windows (encoder features) that no labeled window "
                             "belongs to, for the first rounds, when few labels make the model's uncertainty mostly "
                             "noise (--method, --tta, --diversity and --class-weighting do not apply).")
    method: Method = Field(default="novelty", description="Per-pixel score: the uncertainty of the class "
                           "probabilities (normalised entropy, or 1 - (top-1 - top-2) margin), or novelty: how far "
                           "the pixel's bands are from the labeled pixels of the class predicted for it, to find "
                           "ground the model is sure of but the labels never showed.")
    tta: bool = Field(default=False, description="Average the predictions of the four flips of each model window.")
    diversity: Diversity | None = Field(
        default=None, description="Keep suggestions apart: by encoder-feature distance to the windows already "
                                  "chosen, by their dominant predicted class, or not at all (only never "
                                  "overlapping) [default: " + ", ".join(f"{d} with --method {m}" for m, d in
                                                                        PAIRED_DIVERSITY.items()) + "].")
    class_weighting: ClassWeighting = Field(
        default="none", description="Weight each pixel's uncertainty by its predicted class's weight: balanced, "
                                    "w_c ∝ 1/√f_c over the labeled pixels as in training's loss, ranks windows where "
                                    "rare classes are predicted higher.")
    batch_size: int = Field(default=8, ge=1, description="Windows per forward pass.")
    threads: ThreadsOption = None

    @property
    def scored_by(self) -> Method:
        """The per-pixel score in force: ``method``, or entropy with ``--ranking typical``.

        Typical windows are ranked by encoder features and only report their mean score, so they need no labeled
        pixel for novelty.
        """
        return self.method if self.ranking == "uncertainty" else "entropy"

    @property
    def kept_apart(self) -> Diversity:
        """The diversity in force: ``diversity`` when given, else the one paired with ``method``."""
        return self.diversity if self.diversity is not None else PAIRED_DIVERSITY[self.method]


class SuggestOptions(SuggestSettings):
    """Options of one ``geossl suggest`` run (everything but the checkpoint, the manifest and the catalog)."""

    out: Annotated[Path, Flag(metavar="FILE.gpkg")] = Field(
        description=f"GeoPackage to write: the windows (a layer named after the file) and an empty layer "
                    f"'{LABEL_LAYER}' to draw labels in; the windows' .qml style is written beside it.")
    overwrite: bool = Field(default=False, description=f"Replace --out (and its .qml) if they exist; the polygons "
                                                       f"drawn in its '{LABEL_LAYER}' layer are kept.")
    data_root: DataRootOption = None
    quiet: Annotated[bool, NO_FLAG] = False

    @field_validator("out")
    @classmethod
    def _not_the_label_layer(cls, out: Path) -> Path:
        if out.stem == LABEL_LAYER:
            raise ValueError(f"the windows' layer is named after the file, and '{LABEL_LAYER}' is the layer "
                             "labels are drawn in: choose another name")
        return out
