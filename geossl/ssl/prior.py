"""A prior map as a second, weaker teacher that the model's own confident pseudo-labels override.

A catalog ingested from a manifest with ``prior:`` holds a prior map per scene (``priors/<scene>.tif``, the
manifest's class ids). With the ``prior`` training option on, the unlabeled windows carry it (``prior`` in the
batch: a class index per pixel, ``IGNORE`` where the map has no class or the window has no data; labeled windows
never carry it, so it never competes with a true label) and every pseudo-labelling strategy merges it into its
pseudo-labels in one place, :meth:`geossl.ssl.pseudo.PseudoLabelStrategy.refine`: after the strategy's own
weight (its confidence gate ``1[q ≥ τ]``, DWL's ranking weight) and the ``refine`` option, before any loss or
CutMix uses them.

Schedule, at training progress ``t = step / total_steps`` (0 at the first step):

* the prior's weight is ``β(t) = weight · max(0, 1 − t / until)``: it falls linearly from ``weight`` (0.5) to 0
  at ``until`` (0.5: half of training) and stays 0 after;
* a pixel takes the prior's class, with weight ``β(t)``, where the prior has a class, the model is not
  confident (``q < threshold``, 0.95) and the strategy counts its own pseudo-label less than ``β(t)``
  (``w < β(t)``; FixMatch's unconfident pixels have ``w = 0``);
* everywhere else the strategy's own pseudo-label and weight stand.

So at the start the prior teaches wherever the model is unsure; the model's confident pseudo-labels override
it from the first step, its weaker ones as ``β(t)`` falls below their weight, and from ``until`` on training is
the strategy's alone. DWL computes no pseudo-label loss during its ``warmup_steps``, so the prior starts
teaching after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import BeforeValidator, ConfigDict, Field
from torch import Tensor

from geossl.config import StrictModel
from geossl.data.normalize import IGNORE

#: The values of ``prior.use`` (also accepted alone, ``--prior off``).
USES = ("auto", "on", "off")


class PriorTeacherConfig(StrictModel):
    """The ``prior`` training option: whether the catalog's prior map teaches, how strongly and until when.

    ``use``: ``auto`` (when the catalog has a prior and the strategy makes pseudo-labels), ``on`` (an error
    otherwise) or ``off``. ``weight`` (β₀), ``until`` (a share of the run's steps) and ``threshold``: the
    schedule of the module docstring.
    """

    model_config = ConfigDict(frozen=True)

    use: Literal["auto", "on", "off"] = "auto"
    weight: Annotated[float, Field(ge=0, le=1)] = 0.5
    until: Annotated[float, Field(gt=0, le=1)] = 0.5
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.95

    def beta(self, step: int, total_steps: int) -> float:
        """The prior's weight ``β(t) = weight · max(0, 1 − t / until)`` at ``t = step / total_steps``."""
        t = step / max(1, total_steps)
        return self.weight * max(0.0, 1.0 - t / self.until)

    def __str__(self) -> str:
        """How ``--help`` shows it: ``auto (weight 0.5 until 0.5 threshold 0.95)``."""
        return f"{self.use} (weight {self.weight} until {self.until} threshold {self.threshold})"


def _parse(value: Any) -> Any:
    """``auto``/``on``/``off`` (YAML's ``on``/``off`` are booleans), or a mapping, given as YAML text by a flag."""
    if isinstance(value, str):
        text = value.strip()
        if text not in USES:
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"{text!r} is not valid YAML") from exc
            if not isinstance(value, (dict, bool)):
                raise ValueError(f"expected {', '.join(USES)} or options such as {{weight: 0.3, until: 0.8}}, "
                                 f"got {text!r}")
        else:
            value = {"use": text}
    if isinstance(value, bool):
        value = {"use": "on" if value else "off"}
    if isinstance(value, dict) and isinstance(value.get("use"), bool):
        value = {**value, "use": "on" if value["use"] else "off"}
    return value


#: The ``prior`` option's type: ``{use: auto, weight: 0.5, until: 0.5, threshold: 0.95}``, or ``auto``/``on``/``off``.
PriorChoice = Annotated[PriorTeacherConfig, BeforeValidator(_parse)]


def with_prior(labels: Tensor, weight: Tensor, conf: Tensor, prior: Tensor, beta: float, threshold: float
               ) -> tuple[Tensor, Tensor, Tensor]:
    """The strategy's pseudo-labels and weights ``(N, H, W)`` with the prior merged in (module docstring).

    ``conf``: the model's confidence; ``prior``: the prior's class index (``IGNORE`` where none). Returns the
    labels, the weights and the mask of the pixels the prior taught.
    """
    taught = (prior != IGNORE) & (conf < threshold) & (weight < beta)
    return torch.where(taught, prior, labels), torch.where(taught, torch.full_like(weight, beta), weight), taught


@dataclass
class PriorStep:
    """One step's prior: the unlabeled batch's map, its weight ``β(t)``, and the share of valid pixels it taught."""

    prior: Tensor
    beta: float
    threshold: float
    taught_share: Tensor | None = None

    def merge(self, labels: Tensor, weight: Tensor, conf: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        """:func:`with_prior` on the batch (the prior only where ``valid``); records the share it taught."""
        prior = torch.where(valid, self.prior.to(labels.device), IGNORE)
        labels, weight, taught = with_prior(labels, weight, conf, prior, self.beta, self.threshold)
        self.taught_share = taught.sum().float() / valid.sum().clamp_min(1)
        return labels, weight
