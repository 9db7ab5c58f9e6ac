"""Shared helpers for pydantic configs validated at the edge (manifests, pipelines, options)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from geossl.errors import InputError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every geossl config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def format_validation_error(error: ValidationError) -> str:
    """Return a one-line description of a pydantic error: ``field.path: reason; ...``."""
    parts = []
    for item in error.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(root)"
        msg = item["msg"]
        if item["type"] == "missing":
            msg = "required field is missing"
        elif item["type"] == "extra_forbidden":
            msg = "unknown field"
        parts.append(f"field '{loc}': {msg}")
    return "; ".join(parts)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, raising :class:`InputError` naming the file on any problem."""
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(path, f"not valid YAML{where}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(path, "not a text file") from exc
    if not isinstance(data, dict):
        raise InputError(path, "expected a YAML mapping at the top level")
    return data


def validate_model(model: type[M], data: dict[str, Any], source: str | Path) -> M:
    """Validate ``data`` as ``model``; errors become one-line :class:`InputError` naming ``source``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, format_validation_error(exc)) from exc


def load_yaml_model(model: type[M], path: Path) -> M:
    """Load and validate a YAML config file."""
    return validate_model(model, read_yaml(path), path)


def stable_hash(*items: Any) -> str:
    """Return a short SHA-256 hex digest of JSON-serialisable items (key order does not matter)."""
    payload = json.dumps(items, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
