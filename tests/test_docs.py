"""The documentation: every command and pipeline step has its generated reference, and quoted figures agree.

``make test`` also builds the site with ``mkdocs build --strict``; these tests check what that build cannot: that
nothing is left undocumented, and that the figures come from ``bench/results.yaml`` and agree with the journal.
"""

import re
from pathlib import Path

import click
import pytest
import yaml
from pydantic import BaseModel, Field

from geossl.cli import main
from geossl.commands.options import field_option
from geossl.docgen import cli, models
from geossl.docgen.expand import DocError, Page, directives, expand
from geossl.docgen.figures import load_results
from geossl.pipeline.config import STEP_ORDER
from tests.conftest import ROOT

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


def _page(path: Path) -> Page:
    return Page(root=ROOT, folder=path.parent)


def _nav_files(nav: list) -> list[str]:
    files = []
    for item in nav:
        for value in (item.values() if isinstance(item, dict) else [item]):
            files += _nav_files(value) if isinstance(value, list) else [value]
    return files


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_a_page_with_its_generated_reference(name):
    page = DOCS / "commands" / f"{name}.md"
    assert page.is_file(), f"geossl {name} has no page {page.relative_to(ROOT)}"
    assert ("cli", (name,)) in directives(page.read_text())
    nav = _nav_files(yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"])
    assert f"commands/{name}.md" in nav


@pytest.mark.parametrize("name", sorted(main.commands))
def test_the_reference_lists_every_option_with_its_default_and_range(name):
    reference = cli.command_reference(name)
    ctx = cli.command_context(name)
    assert cli.usage(name) in reference
    for option in cli.listed(ctx.command.get_params(ctx)):
        row = next((line for line in reference.splitlines() if line.startswith(f"| `{option.opts[0]}`")), None)
        assert row is not None, f"geossl {name}: {option.opts[0]} is not in its reference"
        extra = option.get_help_extra(ctx)
        if "default" in extra and not option.is_flag:
            assert f"`{extra['default']}`" in row
        if "range" in extra:
            assert extra["range"] in row
        if option.help:
            assert " ".join(option.help.split()).split(" (")[0][:40] in row


def test_every_pipeline_step_is_documented_with_each_of_its_keys():
    text = (DOCS / "pipelines.md").read_text()
    assert [args[0] for name, args in directives(text) if name == "step"] == list(STEP_ORDER)
    index = models.steps_index()
    assert list(models.step_classes()) == list(STEP_ORDER)
    for name, step in models.step_classes().items():
        assert f"[`{name}`](#{name})" in index
        reference = models.step_reference(name)
        for key in step.model_fields:
            assert f"| `{key}` |" in reference, f"step {name}: key {key} is not documented"


class Probe(BaseModel):
    tiles: int = Field(default=4, ge=1, le=64, description="Tiles at once.")
    mode: str = "fast"


def test_a_field_added_to_a_model_appears_with_its_default_range_and_help():
    ctx = click.Context(click.Command("probe"))
    row = cli.option_row(field_option("tiles", Probe.model_fields["tiles"]), ctx)
    assert row == ["`--tiles`", "`INTEGER`", "`4`", "1<=x<=64", "Tiles at once."]
    table = models.model_table(Probe)
    assert "| `tiles` | `INTEGER` | `4` | 1<=x<=64 | Tiles at once. |" in table
    assert "| `mode` | `TEXT` | `fast` |  |  |" in table


def test_every_page_expands_and_nothing_is_left_unexpanded():
    for path in PAGES:
        text = expand(path.read_text(), _page(path), str(path))
        outside_code = re.sub(r"(?ms)^```.*?^```|`[^`\n]+`", "", text)
        assert "{{" not in outside_code, f"{path.relative_to(ROOT)}: a directive was left as written"


@pytest.mark.parametrize(("directive", "problem"), [
    ('{{ cli("nosuch") }}', "nosuch"),
    ('{{ step("nosuch") }}', "no pipeline step 'nosuch'"),
    ('{{ strategy_options("nosuch") }}', "no strategy 'nosuch'"),
    ('{{ figure("demo.nosuch") }}', "no figure 'demo.nosuch'"),
    ('{{ schema("geossl.manifest:Split") }}', "is not a pydantic model"),
    ('{{ nosuch() }}', "unknown directive"),
    ('{{ cli(train) }}', "not Python literals"),
])
def test_a_directive_naming_what_the_code_lacks_fails(directive, problem):
    with pytest.raises(DocError, match=re.escape(problem)):
        expand(f"text {directive} text", _page(DOCS / "index.md"), "probe.md")


def test_directives_inside_code_are_shown_as_written():
    text = 'a `{{ cli("nosuch") }}` b\n\n```\n{{ figure("x.y") }}\n```\n'
    assert expand(text, _page(DOCS / "index.md")) == text


def test_an_image_is_shown_only_once_its_file_exists(tmp_path):
    (tmp_path / "there.png").write_bytes(b"png")
    page = Page(root=ROOT, folder=tmp_path)
    assert expand('{{ image("there.png", "A map") }}', page) == "![A map](there.png)"
    assert expand('{{ image("missing.png", "A map") }}', page) == ""


def test_every_current_figure_is_written_in_the_journal():
    journal = (ROOT / "bench" / "RESULTS.md").read_text()
    results = load_results(ROOT)
    for name, bench in results.benchmarks.items():
        for key, figure in bench.figures.items():
            assert figure.value in journal, f"{name}.{key} = {figure.value!r} is not in bench/RESULTS.md"


def test_the_figures_pages_quote_exist_and_the_readme_quotes_the_current_demo():
    results = load_results(ROOT)
    quoted = {args[0] for path in PAGES for name, args in directives(path.read_text()) if name == "figure"}
    assert quoted, "no page quotes a figure"
    for key in quoted:
        bench, _, figure = key.partition(".")
        assert figure in results.benchmarks[bench].figures, key
    readme = (ROOT / "README.md").read_text()
    for key in ("miou", "wall", "cpu"):
        assert results.benchmarks["demo"].figures[key].value in readme, f"README's demo.{key} is not the current one"


def test_the_readme_is_a_short_front_page_whose_links_exist():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    for target in re.findall(r"\]\(([^)#\s]+)", readme):
        assert (ROOT / target).exists(), f"README links to {target}, which does not exist"
