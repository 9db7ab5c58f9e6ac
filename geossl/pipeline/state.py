"""The run's state file (``RUN_DIR/state.json``): what each step and each scene last produced, from what.

A step (or a scene within a step) is *done* when the state records it with the same input hash and all its
recorded outputs still exist with the recorded size. The record keeps the step's typed output
(:mod:`geossl.pipeline.outputs`), which a later run reads back when it skips the step, so the steps after it
receive what the step made. The file is rewritten atomically after every change, so a run killed at any point
leaves a state that describes only finished work.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from geossl.io.atomic import write_text_atomic
from geossl.pipeline.outputs import StepOutput

Out = TypeVar("Out", bound=StepOutput)

STATE_NAME = "state.json"


class Record(BaseModel):
    """One finished unit of work: a step, or a step's scene."""

    hash: str
    outputs: dict[str, int] = {}
    seconds: float = 0.0
    finished: str = ""
    result: dict[str, Any] | None = None


class StepState(BaseModel):
    """A step: its own record once finished, and its finished scenes (scene-level steps)."""

    record: Record | None = None
    scenes: dict[str, Record] = {}


class RunState(BaseModel):
    """Everything the run has finished."""

    steps: dict[str, StepState] = Field(default_factory=dict)

    @classmethod
    def load(cls, run_dir: Path) -> RunState:
        """Read the state (an empty one when there is none or it is unreadable)."""
        path = run_dir / STATE_NAME
        if not path.is_file():
            return cls()
        try:
            return cls.model_validate(json.loads(path.read_text()))
        except (ValueError, json.JSONDecodeError):
            return cls()

    def save(self, run_dir: Path) -> None:
        """Write the state atomically."""
        write_text_atomic(run_dir / STATE_NAME, self.model_dump_json(indent=2))

    def step(self, name: str) -> StepState:
        """The state of step ``name`` (created empty)."""
        return self.steps.setdefault(name, StepState())


def fingerprint(run_dir: Path, paths: list[Path]) -> dict[str, int]:
    """Outputs as ``{path relative to run_dir (or absolute): size}``."""
    out = {}
    for p in paths:
        p = Path(p)
        try:
            key = str(p.resolve().relative_to(run_dir.resolve()))
        except ValueError:
            key = str(p.resolve())
        out[key] = p.stat().st_size
    return out


def is_done(record: Record | None, digest: str, run_dir: Path) -> bool:
    """True when ``record`` was made from ``digest`` and its outputs are all still there, same size."""
    if record is None or record.hash != digest:
        return False
    for rel, size in record.outputs.items():
        path = Path(rel) if Path(rel).is_absolute() else run_dir / rel
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def recorded(record: Record | None, digest: str, run_dir: Path, kind: type[Out]) -> Out | None:
    """The output ``record`` keeps, as a ``kind``, when the record is done (:func:`is_done`); else None.

    A record without an output (written by an older geossl) or with one that no longer reads as ``kind`` is not
    done: the step runs again.
    """
    if record is None or record.result is None or not is_done(record, digest, run_dir):
        return None
    try:
        return kind.model_validate(record.result)
    except ValidationError:
        return None


def make_record(digest: str, run_dir: Path, output: StepOutput, seconds: float) -> Record:
    """A record of finished work and its output."""
    return Record(hash=digest, outputs=fingerprint(run_dir, output.files()), seconds=round(seconds, 3),
                  finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  result=output.model_dump(mode="json"))
