"""Named parts chosen by option (strategies, pseudo-label refinements): their options and registries.

A part is a class with a ``Config``: a pydantic model whose ``name`` field is a ``Literal`` of the part's name
(written there once). A registry maps each name to its part, and :func:`tagged_union` is the type of an option
that chooses one part with its options: ``{name: dwl, merge_alpha: 0.5}``, or just ``dwl`` for the defaults.
Pydantic validates the chosen part's options only, once, and an error names the field
(``strategy.dwl.merge_alpha``).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar, Union

from pydantic import BeforeValidator, ConfigDict, Field

from geossl.config import StrictModel


class NamedConfig(StrictModel):
    """Options of a named part: its ``name`` (a ``Literal`` in each subclass) and parameters; immutable."""

    model_config = ConfigDict(frozen=True)

    name: str

    @classmethod
    def tag(cls) -> str:
        """The name this options model stands for (the default of its ``name`` field)."""
        default = cls.model_fields["name"].default
        assert isinstance(default, str), f"{cls.__name__}.name needs a Literal default"
        return default

    def __str__(self) -> str:
        """The name, with the options set explicitly: ``dwl`` or ``dwl(merge_alpha=1.0)`` (``--help`` shows it)."""
        changed = {k: getattr(self, k) for k in sorted(self.model_fields_set) if k != "name"}
        return self.name + (f"({', '.join(f'{k}={v}' for k, v in changed.items())})" if changed else "")


P = TypeVar("P")


def config_of(part: Any) -> type[NamedConfig]:
    """The options model of a part (its ``Config``)."""
    config = part.Config
    assert isinstance(config, type) and issubclass(config, NamedConfig), part
    return config


def registry(*parts: type[P]) -> dict[str, type[P]]:
    """``{name: part}`` in the order given; two parts of one name are an error."""
    out: dict[str, type[P]] = {}
    for part in parts:
        name = config_of(part).tag()
        if name in out:
            raise ValueError(f"two parts named {name!r}: {out[name].__name__} and {part.__name__}")
        out[name] = part
    return out


def choices(parts: dict[str, Any]) -> str:
    """``[a|b|c]``: how ``--help`` shows the names to choose from."""
    return "[" + "|".join(parts) + "]"


def tagged_union(parts: dict[str, type[P]], what: str) -> Any:
    """The type of an option choosing one of ``parts``: its options model, selected by ``name``.

    A plain string stands for ``{name: STRING}`` (the part with its defaults). An unknown or missing name is an
    error listing the names (``what`` says what is chosen, e.g. "strategy").
    """
    configs = tuple(config_of(part) for part in parts.values())

    def named(value: Any) -> Any:
        if isinstance(value, str):
            value = {"name": value}
        if isinstance(value, dict) and value.get("name") not in parts:
            given = f"unknown {what} {value['name']!r}" if "name" in value else f"the {what} needs a name"
            raise ValueError(f"{given} (choose from {', '.join(parts)})")
        return value

    return Annotated[Union[configs], Field(discriminator="name"), BeforeValidator(named)]  # noqa: UP007
