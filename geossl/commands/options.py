"""Command-line options: made from each command's pydantic options model, plus the few that no model holds.

Every field of a command's options model is a flag: ``batch_size`` → ``--batch-size``, with the field's default,
help (``Field(description=...)``), choices (``Literal`` or ``Enum``) and constraints (``ge``, ``le``...) shown in
``--help``; ``bool`` → an on/off flag (``--x/--no-x`` when it defaults to on); ``list[...]`` → a repeatable flag. Click
only parses: the model checks every value, once (:func:`geossl.config.validate_flags`), and a bad one is a
one-line error naming the flag. :class:`geossl.config.Flag` in a field's ``Annotated[...]`` gives a metavar or
keeps the field off the command line.

A command names its model by import path (``"geossl.predict.options:PredictOptions"``), and the model is
imported only when the command runs or shows its help, so ``geossl --help`` stays fast.
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import annotated_types as at
import click
from click.core import ParameterSource
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from geossl.config import Flag, flag_name, validate_flags

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

#: Where :class:`ModelCommand` keeps the flags given on the command line (``ctx.meta``).
GIVEN = "geossl.given_flags"
_METAVARS: dict[Any, str] = {int: "INTEGER", float: "FLOAT", str: "TEXT", Path: "PATH"}


class ModelOption(click.Option):
    """An option made from a model field: its constraints show in ``--help`` beside the default."""

    def __init__(self, *args: Any, constraints: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.constraints = constraints

    def get_help_extra(self, ctx: click.Context) -> Any:
        """Click's extras (default, required) plus the field's constraints."""
        extra = super().get_help_extra(ctx)
        if self.constraints:
            extra["range"] = self.constraints
        return extra


class ModelCommand(click.Command):
    """A command whose options are made from a pydantic model (``options_model="module:Class"``) when needed.

    The callback receives only the hand-written parameters; the flags given on the command line wait in
    ``ctx.meta`` for :func:`parse_options`.
    """

    def __init__(self, *args: Any, options_model: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options_model_path = options_model
        self._model_params: list[click.Option] | None = None

    @property
    def options_model(self) -> type[BaseModel]:
        """The options model (imported on first use)."""
        module, _, name = self.options_model_path.partition(":")
        model = getattr(importlib.import_module(module), name)
        assert isinstance(model, type) and issubclass(model, BaseModel), self.options_model_path
        return model

    def model_params(self) -> list[click.Option]:
        """The options made from the model, added to the command the first time they are asked for."""
        if self._model_params is None:
            self._model_params = model_options(self.options_model)
            self.params.extend(self._model_params)
        return self._model_params

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        """Every parameter, the model's included."""
        self.model_params()
        return super().get_params(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        """Move the model's flags out of the callback's arguments; keep those given on the command line."""
        given = {}
        for param in self.model_params():
            assert param.name is not None
            value = ctx.params.pop(param.name, None)
            if ctx.get_parameter_source(param.name) not in (ParameterSource.DEFAULT, None):
                given[param.name] = list(value) if isinstance(value, tuple) else value
        ctx.meta[GIVEN] = given
        return super().invoke(ctx)


def parse_options(ctx: click.Context, model: type[M], base: dict[str, Any] | None = None,
                  source: str | Path = "options", **fixed: Any) -> M:
    """The command's options, validated once: ``base`` and ``fixed`` values, overridden by the flags given.

    ``base`` holds e.g. a config file's values (``source`` names it in errors); a bad flag is an
    :class:`~geossl.errors.InputError` naming the flag.
    """
    assert isinstance(ctx.command, ModelCommand) and ctx.command.options_model is model, model
    return validate_flags(model, ctx.meta[GIVEN], {**(base or {}), **fixed}, source)


def model_options(model: type[BaseModel]) -> list[click.Option]:
    """One option per field of ``model`` (in field order), except fields marked ``Flag(flag=False)``."""
    return [field_option(name, field) for name, field in model.model_fields.items() if _flag(field).flag]


def field_option(name: str, field: FieldInfo) -> ModelOption:
    """The option of one model field (see the module docstring)."""
    decls, attrs = _option_args(name, field)
    return ModelOption(decls, **attrs)


def shared_option(name: str, kind: Any, default: Any = PydanticUndefined) -> Callable[[F], F]:
    """Decorator: the option of a shared field type that is no field of the command's model (``--catalog``).

    Without ``default`` the option is required. Click converts paths to :class:`~pathlib.Path` and nothing else.
    """
    decls, attrs = _option_args(name, FieldInfo.from_annotated_attribute(kind, default))
    return click.option(*decls, cls=ModelOption, **attrs)


def _option_args(name: str, field: FieldInfo) -> tuple[list[str], dict[str, Any]]:
    """Click's declarations and attributes of a field's option."""
    kind, metadata = _strip(field.annotation, list(field.metadata))
    default = None if field.is_required() else field.get_default(call_default_factory=True)
    if isinstance(default, Enum):
        default = default.value  # what the flag takes, and --help shows
    common: dict[str, Any] = {"help": field.description, "show_default": True}
    if kind is bool:
        decl = f"{flag_name(name)}/--no-{flag_name(name)[2:]}" if default else flag_name(name)
        return [decl, name], {"is_flag": True, "default": bool(default), **common}
    multiple = get_origin(kind) is list
    if multiple:
        kind, metadata = _strip(get_args(kind)[0], [])
    return [flag_name(name), name], {
        "type": click.Path(path_type=Path) if kind is Path else click.STRING, "multiple": multiple,
        "metavar": _flag(field).metavar or _metavar(kind), "required": field.is_required(),
        "default": list(default) if multiple and default else default, "constraints": _constraints(metadata),
        **common}


def _flag(field: FieldInfo) -> Flag:
    """The field's :class:`Flag`, also when it sits inside ``X | None``."""
    metadata = _strip(field.annotation, list(field.metadata))[1]
    return next((m for m in metadata if isinstance(m, Flag)), Flag())


def _strip(kind: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """The type without ``None`` and ``Annotated``, and the constraints found on the way."""
    if get_origin(kind) is Annotated:
        inner, *extra = get_args(kind)
        return _strip(inner, metadata + extra)
    if get_origin(kind) in (Union, types.UnionType):
        members = [a for a in get_args(kind) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0], metadata)
    return kind, metadata


def _metavar(kind: Any) -> str:
    """How ``--help`` names a value: ``INTEGER``, ``[a|b]`` for choices, ``[INTEGER|auto]`` for a union."""
    if get_origin(kind) is Literal:
        return "[" + "|".join(str(a) for a in get_args(kind)) + "]"
    if isinstance(kind, type) and issubclass(kind, Enum):
        return "[" + "|".join(str(m.value) for m in kind) + "]"
    if get_origin(kind) in (Union, types.UnionType):
        return "[" + "|".join(_metavar(_strip(a, [])[0]).strip("[]") for a in get_args(kind)) + "]"
    return _METAVARS.get(kind, "TEXT")


def _constraints(metadata: list[Any]) -> str:
    """Click's way of writing a range (``x>=1``, ``1<=x<=64``), and ``multiple of N``."""
    (low, low_op), (high, high_op) = _bound(metadata, _LOW), _bound(metadata, _HIGH)
    text = ""
    if low_op and high_op:
        text = f"{low}{low_op.replace('>', '<')}x{high_op}{high}"
    elif low_op or high_op:
        text = f"x{low_op}{low}" if low_op else f"x{high_op}{high}"
    step = next((f"multiple of {m.multiple_of}" for m in metadata if isinstance(m, at.MultipleOf)), "")
    return "; ".join(t for t in (text, step) if t)


_LOW = ((at.Ge, "ge", ">="), (at.Gt, "gt", ">"))
_HIGH = ((at.Le, "le", "<="), (at.Lt, "lt", "<"))


def _bound(metadata: list[Any], kinds: tuple[tuple[type, str, str], ...]) -> tuple[Any, str]:
    """The first bound of ``kinds`` among the constraints, as (value, operator); ``(None, "")`` if none."""
    return next(((getattr(m, attr), op) for m in metadata for kind, attr, op in kinds if isinstance(m, kind)),
                (None, ""))


def is_quiet(ctx: click.Context) -> bool:
    """True when the user asked for less output (-q): progress bars off."""
    return bool(ctx.find_root().obj and ctx.find_root().obj.get("verbosity", 0) < 0)
