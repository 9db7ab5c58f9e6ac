"""The command-line reference: rendered from click's command objects, whose flags the options models make.

A field added to an options model is a flag (:mod:`geossl.commands.options`), so it appears here with the
default, range and help ``--help`` shows, with nothing written twice.
"""

from __future__ import annotations

import inspect

import click

from geossl.docgen.table import cell, code, table


def commands() -> dict[str, click.Command]:
    """``geossl``'s subcommands by name, in the order :mod:`geossl.cli` registers them."""
    from geossl.cli import main

    return dict(main.commands)


def command_context(name: str) -> click.Context:
    """A click context for ``geossl NAME`` (what ``--help`` renders with); an unknown name is a KeyError."""
    from geossl.cli import main

    command = commands()[name]
    return click.Context(command, info_name=name, parent=click.Context(main, info_name="geossl"))


def summary(command: click.Command) -> str:
    """The first line of a command's help."""
    return command.get_short_help_str(limit=300)


def usage(name: str) -> str:
    """``geossl NAME [OPTIONS] ARGS``, as ``--help`` writes it."""
    ctx = command_context(name)
    return " ".join(["geossl", name, *ctx.command.collect_usage_pieces(ctx)])


def options_table(name: str) -> str:
    """Every option of ``geossl NAME`` (but ``--help``) with its value, default, allowed range and help."""
    ctx = command_context(name)
    rows = [option_row(p, ctx) for p in listed(ctx.command.get_params(ctx))]
    return table(["option", "value", "default", "allowed", "what it does"], rows)


def listed(params: list[click.Parameter]) -> list[click.Option]:
    """The options a reference lists: every one but ``--help``."""
    return [p for p in params if isinstance(p, click.Option) and "--help" not in p.opts]


def option_row(option: click.Option, ctx: click.Context) -> list[str]:
    """One option's table row: flags, value, default (or *required*), range, help (and *repeatable*)."""
    extra = option.get_help_extra(ctx)
    flags = " / ".join(code(f) for f in [*option.opts, *option.secondary_opts])
    value = "" if option.is_flag or option.count else code(option.make_metavar(ctx))
    default = "*required*" if extra.get("required") else code(str(extra.get("default", "")))
    if option.is_flag:
        default = "on" if option.get_default(ctx) else "off"
    text = (option.help or "") + (" Repeatable." if option.multiple else "")
    return [flags, value, default, cell(str(extra.get("range", ""))), cell(text)]


def command_reference(name: str) -> str:
    """The generated part of a command's page: usage, help and options."""
    ctx = command_context(name)
    help_text = inspect.cleandoc(ctx.command.help or "")
    return "\n\n".join([f"```\n{usage(name)}\n```", help_text, options_table(name)])


def commands_index() -> str:
    """A table of every command, linked to its page (``commands/NAME.md``), with its summary."""
    rows = [[f"[`geossl {name}`]({name}.md)", cell(summary(command))] for name, command in commands().items()]
    return table(["command", "what it does"], rows)


def global_options() -> str:
    """The options of ``geossl`` itself (before the command: ``-v``, ``-q``, ``--version``)."""
    from geossl.cli import main

    ctx = click.Context(main, info_name="geossl")
    rows = [option_row(p, ctx) for p in listed(main.get_params(ctx))]
    return table(["option", "value", "default", "allowed", "what it does"], rows)
