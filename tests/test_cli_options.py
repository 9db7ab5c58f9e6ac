"""Every command's flags come from its options model, and the pipeline's steps use the same models.

The walk below goes over every ``geossl`` command: each is a :class:`ModelCommand`; every field of its model
is a flag with the field's default, choices and help, shown so in ``--help``; every flag either comes from the
model or holds no default of its own. Then every pipeline step is compared with its command's model.
"""

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

import click
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, Field

from geossl.cli import GeosslGroup, main
from geossl.commands.options import ModelCommand, model_options, parse_options
from geossl.config import NO_FLAG, Flag, StrictModel, flag_name
from geossl.errors import InputError
from tests.conftest import ROOT, run_cli

COMMANDS = sorted(main.commands)


def _ctx(command: click.Command) -> click.Context:
    return click.Context(command, info_name=command.name, parent=click.Context(main, info_name="geossl"))


def _flag_fields(model: type[BaseModel]) -> dict[str, object]:
    return {name: field for name, field in model.model_fields.items() if NO_FLAG not in field.metadata}


def _choices(option: click.Option) -> list[str] | None:
    metavar = option.metavar or ""
    return metavar.strip("[]").split("|") if metavar.startswith("[") else None


def _literal_values(annotation: object) -> list[str] | None:
    """The choices of a ``Literal`` field (also inside ``X | None`` or ``Annotated``), else None."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    for arg in get_args(annotation):
        found = _literal_values(arg)
        if found is not None and get_origin(annotation) is not list:
            return found
    return None


@pytest.mark.parametrize("name", COMMANDS)
def test_every_field_is_a_flag_with_the_models_default_and_choices(name):
    command = main.commands[name]
    assert isinstance(command, ModelCommand), f"geossl {name}: its flags must come from an options model"
    model = command.options_model
    options = {p.name: p for p in command.get_params(_ctx(command)) if isinstance(p, click.Option)}
    for field_name, field in _flag_fields(model).items():
        option = options.get(field_name)
        assert option is not None, f"geossl {name}: field {field_name} has no flag"
        assert flag_name(field_name) in option.opts
        assert option.help == field.description and field.description, f"{name} {field_name}: help"
        if field.is_required():
            assert option.required, f"{name} {field_name}"
        elif option.is_flag:
            assert option.default is field.default, f"{name} {field_name}"
        else:
            want = list(field.default) if isinstance(field.default, (list, tuple)) else field.default
            assert option.default == want, f"{name} {field_name}: {option.default} != {field.default}"
        literal = _literal_values(field.annotation)
        if literal is not None and get_origin(field.annotation) is not list:
            # the field's choices, in order, beside the type of a union's other member (devices: INTEGER|auto)
            choices = [c for c in _choices(option) or [] if c not in ("INTEGER", "FLOAT", "TEXT")]
            assert choices == literal, f"{name} {field_name}"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_flag_comes_from_the_model_or_has_no_default(name):
    command = main.commands[name]
    fields = _flag_fields(command.options_model)
    ctx = _ctx(command)
    for param in command.get_params(ctx):
        if not isinstance(param, click.Option) or param.name in fields or param.name == "_click_default_help":
            continue
        # a flag the model does not hold (e.g. train's --config, --resume): no default that could disagree
        default = param.get_default(ctx, call=False)
        assert param.required or default in (None, False), f"geossl {name} {param.opts}: {default}"
        assert param.name not in command.options_model.model_fields, f"geossl {name}: {param.name} twice"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_each_flag_with_its_default(name):
    command = main.commands[name]
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    shown = "".join(result.output.split())  # click wraps lines, also after a hyphen
    ctx = _ctx(command)
    for option in command.model_params():
        flags, text = option.get_help_record(ctx)
        assert "".join(flags.split()) in shown, f"geossl {name} --help lacks {flags}"
        assert "".join(text.split()) in shown, f"geossl {name} --help: {text}"
        field = command.options_model.model_fields[option.name]
        default = field.default
        if not field.is_required() and default not in (None, False, []) and not option.is_flag:
            assert f"[default:{default}".replace(" ", "") in shown, f"geossl {name} {flags}: no default shown"


# The pipeline's steps: (step model, its command's options model, step fields of its own, command fields a
# pipeline does not take and why).
PIPELINE_STEPS = {
    "synth": ("SynthStep", "geossl.synth:SynthConfig", {}, {}),
    "ingest": ("IngestStep", "geossl.ingest.options:IngestOptions", {}, {
        "out": "the run's", "data_root": "the run's", "scheduler": "the run's", "workers": "the run's",
        "quiet": "the run's", "force": "geossl run --force",
        "blocksize": "left out so that existing runs' digests stay valid"}),
    "train": ("TrainStep", "geossl.train.config:TrainConfig", {"checkpoint": "use this model, skip training",
                                                               "fine_tune": "a later round starts from the last"}, {}),
    "suggest": ("SuggestStep", "geossl.suggest.options:SuggestOptions", {}, {
        "out": "the run's", "overwrite": "always", "data_root": "the run's", "quiet": "the run's"}),
    "predict": ("PredictStep", "geossl.predict.options:PredictOptions", {}, {
        "out": "the run's", "scheduler": "the run's", "workers": "the run's", "quiet": "the run's",
        "threads": "every core (the default), so that existing runs' digests stay valid"}),
    "vectorize": ("VectorizeStep", "geossl.vectorize.options:VectorizeOptions", {
        "format": "the file is named by the step, so a format is needed (no --out suffix)",
        "confidence": "on/off: the raster is the predict step's"}, {
        "out": "the run's", "classes": "the catalog's", "overwrite": "always", "scheduler": "the run's",
        "workers": "the run's", "quiet": "the run's", "tile_pixels": "not an option"}),
    "evaluate": ("EvaluateStep", "geossl.train.config:EvaluateOptions", {}, {
        "out": "the run's", "data_root": "the run's", "quiet": "the run's",
        "batch_size": "left out so that existing runs' digests stay valid",
        "threads": "left out so that existing runs' digests stay valid"}),
}


def _load(path: str) -> type[BaseModel]:
    import importlib

    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("step", sorted(PIPELINE_STEPS))
def test_pipeline_steps_use_their_commands_models(step):
    from geossl.pipeline import config

    step_name, command_path, own, not_taken = PIPELINE_STEPS[step]
    step_model, command_model = getattr(config, step_name), _load(command_path)
    assert config.Steps.model_fields[step].annotation in (step_model, step_model | None)
    for name, field in step_model.model_fields.items():
        if name in own:
            continue
        assert name in command_model.model_fields, f"pipeline {step}.{name} is no option of the command"
        theirs = command_model.model_fields[name]
        assert (field.annotation, field.default, field.metadata, field.description) == \
            (theirs.annotation, theirs.default, theirs.metadata, theirs.description), f"{step}.{name}"
    missing = set(command_model.model_fields) - set(step_model.model_fields) - set(not_taken)
    assert not missing, f"pipeline step {step} lacks {sorted(missing)}"
    assert not set(not_taken) & set(step_model.model_fields)


def test_every_pipeline_step_is_compared():
    from geossl.pipeline.config import Steps

    assert set(Steps.model_fields) - {"report"} == set(PIPELINE_STEPS)


class Sample(StrictModel):
    """A small options model exercising every kind of field the generator knows."""

    size: int = Field(default=8, ge=1, le=64, description="A size.")
    ratio: float = Field(default=0.5, gt=0, description="A ratio.")
    mode: Literal["fast", "exact"] = Field(default="fast", description="A mode.")
    widths: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="Widths.")
    smooth: bool = Field(default=True, description="Smooth it.")
    verbose: bool = Field(default=False, description="Say more.")
    folder: Annotated[Path | None, Flag(metavar="DIRECTORY")] = Field(default=None, description="A folder.")
    hidden: Annotated[int, NO_FLAG] = 3


@click.group(cls=GeosslGroup)
def group() -> None:
    """geossl's own group: errors become one line and exit 2."""


@group.command(cls=ModelCommand, options_model=f"{__name__}:Sample")
@click.option("--base", type=click.Path(path_type=Path), default=None)
@click.pass_context
def sample(ctx: click.Context, base: Path | None) -> None:
    options = parse_options(ctx, Sample, yaml.safe_load(base.read_text()) if base else None, base or "options",
                            hidden=5)
    click.echo(options.model_dump_json())


def _sample(*args: str) -> tuple[int, str]:
    """Exit code and stdout, or the one error line."""
    result = CliRunner().invoke(group, ["sample", *[str(a) for a in args]])
    if result.exit_code:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        return result.exit_code, lines[0].removeprefix("Error: ")
    return 0, result.stdout


def test_generated_flags_parse_into_the_model():
    import json

    code, out = _sample("--size", "16", "--mode", "exact", "--widths", "4", "--widths", "2", "--no-smooth",
                        "--verbose", "--folder", "x")
    assert code == 0, out
    assert json.loads(out) == {"size": 16, "ratio": 0.5, "mode": "exact", "widths": [4, 2], "smooth": False,
                               "verbose": True, "folder": "x", "hidden": 5}
    code, out = _sample()
    assert json.loads(out) == Sample(hidden=5).model_dump(mode="json")


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "0"], "--size: must be at least 1"),
    (["--size", "65"], "--size: must be at most 64"),
    (["--size", "many"], "--size: must be a whole number"),
    (["--ratio", "0"], "--ratio: must be positive"),
    (["--ratio", "inf"], "--ratio: must be a finite number"),
    (["--mode", "slow"], "--mode: must be one of 'fast' or 'exact'"),
    (["--widths", "3", "--widths", "0"], "--widths: must be at least 1"),
])
def test_a_bad_flag_is_named_in_plain_words(args, message):
    code, out = _sample(*args)
    assert code == 2 and out == message


def test_flags_given_override_the_base_and_defaults_do_not(tmp_path):
    import json

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"size": 32, "mode": "exact", "smooth": False}))
    code, out = _sample("--base", base, "--size", "4")
    assert code == 0, out
    assert json.loads(out) == {**Sample(hidden=5).model_dump(mode="json"), "size": 4, "mode": "exact",
                               "smooth": False}
    code, out = _sample("--base", base, "--smooth")
    assert json.loads(out) == {**Sample(hidden=5).model_dump(mode="json"), "size": 32, "mode": "exact",
                               "smooth": True}


def test_a_bad_base_value_names_the_file(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({"size": 0}))
    code, out = _sample("--base", base, "--mode", "exact")
    assert code == 2 and out.startswith(f"{base}: field 'size'"), out


def test_help_shows_constraints_choices_and_on_off_flags():
    result = CliRunner().invoke(group, ["sample", "--help"])
    text = " ".join(result.output.split())
    assert "--size INTEGER A size. [default: 8; 1<=x<=64]" in text
    assert "--ratio FLOAT A ratio. [default: 0.5; x>0]" in text
    assert "--mode [fast|exact] A mode. [default: fast]" in text
    assert "--smooth / --no-smooth Smooth it. [default: smooth]" in text
    assert "--folder DIRECTORY" in text and "--hidden" not in text
    assert [o.name for o in model_options(Sample)] == ["size", "ratio", "mode", "widths", "smooth", "verbose",
                                                       "folder"]


def test_train_flags_override_the_config_file_and_name_the_bad_one(tmp_path):
    from geossl.train.config import TrainConfig

    @click.command(cls=ModelCommand, options_model="geossl.train.config:TrainConfig")
    @click.pass_context
    def probe(ctx: click.Context) -> None:
        click.echo(parse_options(ctx, TrainConfig, {"batch_size": 2, "lr": 0.01}, "train.yaml").model_dump_json())

    import json

    result = CliRunner().invoke(probe, ["--batch-size", "4", "--devices", "2", "--decoder-channels", "8"] +
                                ["--decoder-channels", "8"] * 4)
    config = json.loads(result.output)
    assert (config["batch_size"], config["lr"], config["devices"], config["decoder_channels"]) == (4, 0.01, 2, [8] * 5)
    with pytest.raises(InputError, match=r"^--devices: must be a whole number or one of 'auto'$"):
        CliRunner().invoke(probe, ["--devices", "many"], catch_exceptions=False)


def test_evaluate_split_is_checked_by_the_model(tmp_path):
    result = run_cli("evaluate", tmp_path / "model.pt", ROOT / "data_manifests" / "synthetic.yaml", "--catalog",
                     tmp_path, "--split", "train")
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: --split: must be one of 'labeled', 'unlabeled', 'val' or 'test'"


def test_the_command_line_starts_without_torch():
    code = "import sys; from geossl.cli import main; import geossl.commands.options; " \
           "assert 'torch' not in sys.modules and 'rasterio' not in sys.modules, 'heavy import'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
