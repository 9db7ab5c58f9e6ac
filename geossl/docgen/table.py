"""Markdown tables and the cells that go in them."""

from __future__ import annotations

from collections.abc import Sequence


def cell(text: str) -> str:
    """Text safe inside a table cell: pipes escaped, line breaks joined."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    """Text as inline code in a table cell (empty stays empty); pipes inside code need no escape."""
    return "`" + " ".join(text.split()) + "`" if text else ""


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; cells are written as given (use :func:`cell` or :func:`code` for them).

    A column whose cells are all empty is left out.
    """
    keep = [i for i in range(len(header)) if any(row[i] for row in rows)] if rows else list(range(len(header)))
    header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
