"""What training windows a strategy needs: the small typed spec its options declare and the data module reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataSpec:
    """The training data of one strategy, besides the labeled windows every strategy gets.

    ``unlabeled``: batches of unlabeled windows come with each labeled batch. ``overlap``: those windows come in
    pairs whose shared area is drawn from this range (a share of a window's area), or None for single windows.
    ``prior``: those windows carry the catalog's prior map (``prior``; set by the run from its ``prior`` option,
    not by the strategy). Batch sizes are the run's (``TrainConfig``), not the strategy's.
    """

    unlabeled: bool = True
    overlap: tuple[float, float] | None = None
    prior: bool = False

    def __post_init__(self) -> None:
        if self.overlap is not None and not self.unlabeled:
            raise ValueError("overlapping pairs are pairs of unlabeled windows: overlap needs unlabeled")
        if self.prior and not self.unlabeled:
            raise ValueError("the prior map comes with the unlabeled windows: prior needs unlabeled")

    @property
    def paired(self) -> bool:
        """True when unlabeled windows come in overlapping pairs."""
        return self.overlap is not None
