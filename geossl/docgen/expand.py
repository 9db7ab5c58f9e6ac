"""Directives in the documentation's pages, replaced by generated markdown when the site is built.

A directive is ``{{ NAME(ARGS) }}`` with Python literals as arguments, e.g. ``{{ cli("train") }}`` or
``{{ figure("demo.miou") }}`` (:data:`DIRECTIVES` lists them). Inside code (fenced blocks and inline code) it is
shown as written. An unknown directive, command, step, strategy or figure is a :class:`DocError`, so a page
that names something the code no longer has fails the build.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from geossl.docgen import cli, figures, models
from geossl.errors import InputError

_TOKEN = re.compile(r"(?ms)(?P<fence>^```.*?^```)|(?P<code>`[^`\n]+`)"
                    r"|\{\{\s*(?P<name>\w+)\((?P<args>.*?)\)\s*\}\}")


class DocError(ValueError):
    """A directive that cannot be expanded: the page, the directive and why."""


@dataclass
class Page:
    """Where a page is: the repository root (for ``bench/results.yaml``) and the page's own folder."""

    root: Path
    folder: Path

    @cached_property
    def results(self) -> figures.Results:
        """The current benchmark figures (read once per page)."""
        return figures.load_results(self.root)


def _image(page: Page, path: str, alt: str) -> str:
    """An image that may not exist yet: shown when the file is there, left out (no broken link) when not."""
    return f"![{alt}]({path})" if (page.folder / path).is_file() else ""


#: Every directive by name: a function of the page and the directive's arguments, returning markdown.
DIRECTIVES: dict[str, Callable[..., str]] = {
    "cli": lambda page, name: cli.command_reference(name),
    "commands": lambda page: cli.commands_index(),
    "global_options": lambda page: cli.global_options(),
    "step": lambda page, name: models.step_reference(name),
    "steps": lambda page: models.steps_index(),
    "strategy_options": lambda page, name: models.strategy_options(name),
    "schema": lambda page, path: models.schema(path),
    "figure": lambda page, key: figures.figure(page.results, key),
    "results": lambda page: figures.results_tables(page.results),
    "image": _image,
}


def directives(markdown: str) -> list[tuple[str, tuple[Any, ...]]]:
    """The directives of a page, outside code, as (name, arguments)."""
    return [(m["name"], _arguments(m["args"], m[0])) for m in _TOKEN.finditer(markdown) if m["name"]]


def expand(markdown: str, page: Page, where: str = "page") -> str:
    """The page with every directive outside code replaced; ``where`` names the page in errors."""

    def replace(match: re.Match[str]) -> str:
        if not match["name"]:
            return match[0]
        name, args = match["name"], _arguments(match["args"], match[0])
        if name not in DIRECTIVES:
            raise DocError(f"{where}: unknown directive {match[0]} (directives: {', '.join(DIRECTIVES)})")
        try:
            return DIRECTIVES[name](page, *args)
        except (KeyError, TypeError, InputError) as exc:
            raise DocError(f"{where}: {match[0]}: {exc}") from exc

    return _TOKEN.sub(replace, markdown)


def _arguments(text: str, directive: str) -> tuple[Any, ...]:
    """A directive's arguments: Python literals separated by commas."""
    try:
        value = ast.literal_eval(f"({text},)") if text.strip() else ()
    except (ValueError, SyntaxError) as exc:
        raise DocError(f"{directive}: arguments are not Python literals") from exc
    assert isinstance(value, tuple)
    return value
