"""Shared helpers for pydantic configs validated at the edge (manifests, pipelines, options)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from geossl.errors import InputError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every geossl config: unknown keys are errors, values are validated on assignment, numbers finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


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


@dataclass(frozen=True)
class Flag:
    """How a field of an options model appears on the command line, beyond what the field itself says.

    Put it in the field's ``Annotated[...]``: ``metavar`` names the value in ``--help``; ``flag=False`` keeps
    the field off the command line (set by the program, or only from a file). Name, default, help, choices and
    constraints always come from the field (see :mod:`geossl.commands.options`).
    """

    metavar: str | None = None
    flag: bool = True


#: A field that is never a command-line flag.
NO_FLAG = Flag(flag=False)


# Options fields that several commands share (``name: SchedulerOption = None``).
SchedulerOption = Annotated[str | None, Flag(metavar="ADDRESS"), Field(
    description="Use an existing dask.distributed scheduler (tcp://host:port) instead of a LocalCluster.")]
WorkersOption = Annotated[int | None, Field(
    ge=1, description="Threads (or processes) of the local Dask cluster [default: one per core].")]
ThreadsOption = Annotated[int | None, Field(ge=1, description="torch CPU threads [torch's default: one per core].")]
DataRootOption = Annotated[Path | None, Flag(metavar="DIRECTORY"), Field(
    description="Resolve the manifest's paths under this folder instead of the manifest's own.")]
CatalogOption = Annotated[Path, Flag(metavar="DIRECTORY"), Field(
    description="Ingest output folder (catalog.json); the MANIFEST is ingested there first when it holds no "
                "catalog yet.")]


def flag_name(field: str) -> str:
    """The command-line flag of an options field: ``batch_size`` → ``--batch-size``."""
    return "--" + field.replace("_", "-")


def validate_flags(model: type[M], flags: dict[str, Any], base: dict[str, Any] | None = None,
                   source: str | Path = "options") -> M:
    """Validate ``base`` (e.g. a config file's values) overridden by the command-line ``flags`` given.

    The error names the flag when a flag was wrong (``--min-area: must be zero or positive``), else
    ``source`` with every problem (:func:`format_validation_error`).
    """
    try:
        return model.model_validate({**(base or {}), **flags})
    except ValidationError as exc:
        for item in exc.errors():
            if item["loc"] and item["loc"][0] in flags:
                field = str(item["loc"][0])
                same = [e for e in exc.errors() if e["loc"] and e["loc"][0] == field]
                raise InputError(flag_name(field), _flag_problem(same)) from exc
        raise InputError(source, format_validation_error(exc)) from exc


def _flag_problem(errors: list[ErrorDetails]) -> str:
    """Plain words for one flag's errors (a union type gives one error per member)."""
    wanted = [_wanted(e) for e in errors]
    if all(w is not None for w in wanted):
        return "must be " + " or ".join(dict.fromkeys(w for w in wanted if w is not None))
    return "; ".join(dict.fromkeys(e["msg"].removeprefix("Value error, ") for e in errors))


def _wanted(error: ErrorDetails) -> str | None:
    """What the value must be, for the common pydantic errors (None for others)."""
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "greater_than_equal":
        return "zero or positive" if ctx["ge"] == 0 else f"at least {ctx['ge']}"
    if kind == "greater_than":
        return "positive" if ctx["gt"] == 0 else f"greater than {ctx['gt']}"
    words = {"less_than_equal": "at most {le}", "less_than": "less than {lt}",
             "multiple_of": "a multiple of {multiple_of}", "literal_error": "one of {expected}",
             "enum": "one of {expected}", "int_parsing": "a whole number", "int_from_float": "a whole number",
             "float_parsing": "a number", "finite_number": "a finite number", "bool_parsing": "true or false"}
    return words[kind].format(**ctx) if kind in words else None


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


def known_crs(crs: str) -> str:
    """``crs`` if GDAL knows it, else a ValueError (for pydantic validators)."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        CRS.from_user_input(crs)
    except CRSError as exc:
        raise ValueError(f"'{crs}' is not a known CRS") from exc
    return crs
