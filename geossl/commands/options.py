"""Options shared by several subcommands, defined once (as in rasterio's ``rio``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def scheduler_options(func: F) -> F:
    """``--scheduler`` and ``--workers``, shared by every command that runs on Dask."""
    return scheduler_options_with("Threads (or processes) of the local Dask cluster [default: one per core].")(func)


def scheduler_options_with(workers_help: str, scheduler_help: str | None = None) -> Callable[[F], F]:
    """:func:`scheduler_options` with a command's own help for what ``--workers`` (and ``--scheduler``) mean."""

    def decorate(func: F) -> F:
        func = click.option("--workers", type=click.IntRange(min=1), default=None, help=workers_help)(func)
        func = click.option("--scheduler", metavar="ADDRESS", default=None,
                            help=scheduler_help or "Use an existing dask.distributed scheduler (tcp://host:port) "
                                                   "instead of a LocalCluster.")(func)
        return func

    return decorate


def data_root_option(func: F) -> F:
    """``--data-root``: where the manifest's relative paths are resolved."""
    return click.option("--data-root", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help="Resolve the manifest's paths under this folder instead of the manifest's own.")(func)


def is_quiet(ctx: click.Context) -> bool:
    """True when the user asked for less output (-q): progress bars off."""
    return bool(ctx.find_root().obj and ctx.find_root().obj.get("verbosity", 0) < 0)


def catalog_option(func: F) -> F:
    """``--catalog``: the ingest output folder to train or evaluate on (ingested first when empty)."""
    return click.option("--catalog", "catalog", type=click.Path(path_type=Path, file_okay=False), required=True,
                        help="Ingest output folder (catalog.json); the MANIFEST is ingested there first when "
                             "it holds no catalog yet.")(func)


def threads_option(func: F) -> F:
    """``--threads``: torch's CPU threads (1 is often fastest on a machine busy with other work)."""
    return click.option("--threads", type=click.IntRange(min=1), default=None,
                        help="torch CPU threads [torch's default: one per core].")(func)
