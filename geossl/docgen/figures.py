"""The current benchmark figures (``bench/results.yaml``): the one place the docs quote them from.

``bench/results.yaml`` holds, per benchmark, when and where it was last measured, the machine's load, the
command that reruns it and its current figures; ``bench/RESULTS.md`` is the dated journal of how they were
reached. The results page shows every benchmark's table (:func:`results_tables`) and any page quotes one figure
by key (:func:`figure`: ``demo.miou``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from geossl.config import StrictModel, load_yaml_model
from geossl.docgen.table import cell, table

#: The file of current figures, relative to the repository root.
RESULTS_FILE = Path("bench") / "results.yaml"


class Figure(StrictModel):
    """One current figure: what is measured, its value as the docs quote it, and a note (the peer, the target)."""

    what: str
    value: str
    note: str = ""


class Benchmark(StrictModel):
    """A benchmark's latest measurement: when, where, under what load, how to rerun it, and its figures."""

    title: str
    date: str
    machine: str
    load: str
    command: str
    figures: dict[str, Figure] = Field(min_length=1)


class Results(StrictModel):
    """Every benchmark's current figures, by benchmark name (the first part of a figure's key)."""

    benchmarks: dict[str, Benchmark]


def load_results(root: Path) -> Results:
    """The current figures of the repository at ``root``."""
    return load_yaml_model(Results, root / RESULTS_FILE)


def figure(results: Results, key: str) -> str:
    """The value of figure ``BENCHMARK.FIGURE``; an unknown key is a KeyError naming the known ones."""
    bench, _, name = key.partition(".")
    if bench not in results.benchmarks or name not in results.benchmarks[bench].figures:
        known = [f"{b}.{f}" for b, item in results.benchmarks.items() for f in item.figures]
        raise KeyError(f"no figure {key!r} in {RESULTS_FILE} (figures: {', '.join(known)})")
    return results.benchmarks[bench].figures[name].value


def benchmark_table(name: str, bench: Benchmark) -> str:
    """One benchmark's section: title, when / where / load, its figures, and the command that reruns it."""
    rows = [[cell(f.what), f"**{cell(f.value)}**", cell(f.note)] for f in bench.figures.values()]
    return "\n\n".join([
        f"## {bench.title} {{#{name}}}",
        f"**{cell(bench.date)}** · {bench.machine} · {bench.load}",
        table(["figure", "current", "note"], rows),
        f"Rerun:\n\n```bash\n{bench.command.strip()}\n```"])


def results_tables(results: Results) -> str:
    """Every benchmark's section, in the file's order."""
    return "\n\n".join(benchmark_table(name, bench) for name, bench in results.benchmarks.items())
