"""Reference tables of pydantic options models whose fields are keys of a file: pipeline steps, strategies.

Each field is rendered through the same option maker as the command-line flags
(:func:`geossl.commands.options.field_option`), so a key's default and range read as its flag's do.
"""

from __future__ import annotations

import importlib
import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import click
from pydantic import BaseModel

from geossl.commands.options import field_option
from geossl.config import Flag
from geossl.docgen.table import cell, code, table


def field_rows(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> list[list[str]]:
    """One row per field of ``model`` (but ``skip``): key, value, default, allowed range, description."""
    rows = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        option = field_option(name, field)
        ctx = click.Context(click.Command(name, params=[option]))
        extra = option.get_help_extra(ctx)
        if option.is_flag:
            value, default = "`true` / `false`", code(str(bool(option.get_default(ctx))).lower())
        else:
            metavar = option.make_metavar(ctx).strip("[]").replace("|", " | ")
            named = any(isinstance(m, Flag) and m.metavar for m in field.metadata)
            value = code(metavar) if named or not holds_model(field.annotation) else nested(field.annotation)
            default = "*required*" if extra.get("required") else code(str(extra.get("default", "")))
        text = field.description or ""
        rows.append([code(name), value, default, cell(str(extra.get("range", ""))), cell(text)])
    return rows


def holds_model(annotation: Any) -> bool:
    """True when a field's type is, or unites, pydantic models (a nested mapping in a file)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(holds_model(a) for a in get_args(annotation))


def nested(annotation: Any) -> str:
    """How a table names the value of a nested model: a mapping, or a part's name or mapping."""
    one = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return "a mapping" if one else "a name, or a mapping with `name`"


def model_table(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> str:
    """The table of :func:`field_rows`."""
    return table(["key", "value", "default", "allowed", "what it does"], field_rows(model, skip))


def step_classes() -> dict[str, type[BaseModel]]:
    """Each pipeline step's class by name, in run order (the fields of :class:`geossl.pipeline.config.Steps`)."""
    from geossl.pipeline.config import Steps

    classes = {}
    for name, field in Steps.model_fields.items():
        kind = next(a for a in get_args(field.annotation) or (field.annotation,) if a is not type(None))
        assert isinstance(kind, type) and issubclass(kind, BaseModel), name
        classes[name] = kind
    return classes


def step_reference(name: str) -> str:
    """The keys a pipeline's step NAME takes (``steps: {NAME: {...}}``), from its step class."""
    steps = step_classes()
    if name not in steps:
        raise KeyError(f"no pipeline step {name!r} (steps: {', '.join(steps)})")
    if not steps[name].model_fields:
        return f"The `{name}` step takes no options: `{name}: {{}}`."
    return model_table(steps[name])


def steps_index() -> str:
    """The steps of a pipeline in run order, each with what its class says it does."""
    from geossl.pipeline.config import Steps

    rows = []
    for name, step in step_classes().items():
        required = "always" if Steps.model_fields[name].default is not None else "optional"
        rows.append([f"[`{name}`](#{name})", required, cell((step.__doc__ or "").strip().splitlines()[0])])
    return table(["step", "in a run", "what it does"], rows)


def strategy_options(name: str) -> str:
    """The options of strategy NAME (its ``Config``; ``--strategy-option KEY=VALUE``), from the model."""
    from geossl.ssl import STRATEGIES

    if name not in STRATEGIES:
        raise KeyError(f"no strategy {name!r} (strategies: {', '.join(STRATEGIES)})")
    config = STRATEGIES[name].Config
    if set(config.model_fields) == {"name"}:
        return f"`{name}` takes no options."
    return model_table(config, frozenset({"name"}))


def type_name(annotation: Any) -> str:
    """A field's type as a reader writes it: ``list[str]``, ``float | None``, ``'random' | 'cover_classes'``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def schema(path: str) -> str:
    """The keys of a file's part, from its model (``"geossl.manifest:BlockSplits"``): key, type, default, range."""
    module, _, name = path.partition(":")
    model = getattr(importlib.import_module(module), name, None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise KeyError(f"{path!r} is not a pydantic model")
    rows = []
    for key, field in model.model_fields.items():
        default = ("*required*" if field.is_required() else "*when written*" if field.default_factory is not None
                   else code(_plain(field.get_default())))
        option = field_option(key, field)
        rows.append([code(key), code(type_name(field.annotation)), default, cell(option.constraints),
                     cell(field.description or "")])
    return table(["key", "type", "default", "allowed", "what it is"], rows)


def _plain(value: Any) -> str:
    """A default as YAML would write it (``null``, ``[]``, ``true``)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    return json.dumps(value, default=str)
