"""The strategy interface: options as a tagged union, data needs, owned modules, the EMA teacher, refinements."""

import copy
import logging
from typing import Literal

import pytest
import torch
import yaml
from pydantic import TypeAdapter, ValidationError
from torch import nn

from geossl.catalog import load_catalog
from geossl.data.module import plan_splits
from geossl.data.spec import DataSpec
from geossl.errors import InputError
from geossl.models import ModelConfig, Segmenter, load_bundle, save_bundle
from geossl.ssl import STRATEGIES, PseudoLabelStrategy
from geossl.ssl.crossview import CrossViewConfig
from geossl.ssl.losses import pseudo_labels
from geossl.ssl.refine import REFINEMENTS, NoRefineConfig, RefineConfig, Refinement
from geossl.ssl.registry import registry, tagged_union
from geossl.ssl.teacher import EmaTeacher, ema_decay_at, ema_update
from geossl.ssl.thresholds import EMA_KEY, ClassThresholds, ThresholdStrategy
from geossl.train.config import TrainConfig, with_strategy_flags
from tests.conftest import ROOT, run_cli

MANIFEST = ROOT / "data_manifests" / "synthetic.yaml"
MODEL = {"encoder": "tu-test_resnet", "in_channels": 3, "num_classes": 3, "decoder_channels": [16, 8, 8, 8, 8]}
PSEUDO_LABELLING = [name for name, s in STRATEGIES.items() if issubclass(s, PseudoLabelStrategy)]


# ------------------------------------------------------------------------------------------- options
def test_a_strategy_is_chosen_by_name_or_with_its_options():
    assert TrainConfig().strategy.name == "supervised"
    dwl = TrainConfig(strategy="dwl").strategy
    assert dwl == STRATEGIES["dwl"].Config() and dwl.merge_alpha == 0.5
    tuned = TrainConfig(strategy={"name": "dwl", "merge_alpha": 1.0, "refine": "none"}).strategy
    assert tuned.merge_alpha == 1.0 and tuned.refine == NoRefineConfig() and str(tuned) == "dwl(merge_alpha=1.0, " \
                                                                                          "refine=none)"
    # what config.yaml holds reads back the same
    config = TrainConfig(strategy={"name": "crossview", "overlap": [0.3, 0.6], "teacher": "ema"})
    again = TrainConfig.model_validate(yaml.safe_load(yaml.safe_dump(config.model_dump(mode="json"))))
    assert again == config and again.strategy.overlap == (0.3, 0.6)


@pytest.mark.parametrize(("strategy", "where", "says"), [
    ("magic", "strategy", "unknown strategy 'magic' (choose from supervised, fixmatch"),
    ({"merge_alpha": 0.5}, "strategy", "the strategy needs a name"),
    ({"name": "dwl", "merge_alpha": 2.0}, "strategy.dwl.merge_alpha", "less than or equal to 1"),
    ({"name": "fixmatch", "merge_alpha": 0.5}, "strategy.fixmatch.merge_alpha", "Extra inputs"),
    ({"name": "unimatch", "refine": "magic"}, "strategy.unimatch.refine", "unknown refinement 'magic'"),
    ({"name": "supervised", "teacher": "ema"}, "strategy.supervised.teacher", "Extra inputs"),
])
def test_bad_strategy_options_name_the_field(strategy, where, says):
    with pytest.raises(ValidationError) as info:
        TrainConfig(strategy=strategy)
    (error,) = info.value.errors()
    assert ".".join(map(str, error["loc"])) == where and says in error["msg"]


def test_the_old_strategy_params_are_upgraded_or_refused(caplog):
    with caplog.at_level(logging.WARNING):
        config = TrainConfig.model_validate({"strategy": "dwl", "strategy_params": {"merge_alpha": 0.2}})
    assert config.strategy == STRATEGIES["dwl"].Config(merge_alpha=0.2)
    assert "write strategy: {name: dwl, merge_alpha: 0.2}" in caplog.text
    # a run folder's config.yaml of an older version (empty strategy_params) reads silently
    assert TrainConfig.model_validate({"strategy": "fixmatch", "strategy_params": {}}).strategy.name == "fixmatch"
    with pytest.raises(ValidationError, match="move its options into strategy"):
        TrainConfig.model_validate({"strategy": {"name": "dwl"}, "strategy_params": {"merge_alpha": 0.2}})


def test_strategy_flags_keep_the_files_options_of_the_same_strategy():
    file = {"strategy": {"name": "dwl", "merge_alpha": 0.3}, "max_steps": 7}
    assert with_strategy_flags(file, None, ()) == file
    assert with_strategy_flags(file, "dwl", ["teacher=ema", "ema_decay=0.9", "refine={name: none}"]) == {
        "strategy": {"name": "dwl", "merge_alpha": 0.3, "teacher": "ema", "ema_decay": 0.9,
                     "refine": {"name": "none"}}, "max_steps": 7}
    assert with_strategy_flags(file, "crossview", ["overlap=[0.3, 0.6]"])["strategy"] == {
        "name": "crossview", "overlap": [0.3, 0.6]}
    old = {"strategy": "dwl", "strategy_params": {"merge_alpha": 0.3}}
    assert with_strategy_flags(old, None, ["warmup_steps=0"])["strategy"] == {
        "name": "dwl", "merge_alpha": 0.3, "warmup_steps": 0}


@pytest.mark.parametrize(("name", "options", "flag", "says"), [
    ("magic", [], "--strategy", "unknown strategy 'magic'"),
    ("dwl", ["merge_alpha=2"], "--strategy-option", "dwl: field 'merge_alpha'"),
    (None, ["threshold=0.5"], "--strategy-option", "supervised: field 'threshold': unknown field"),
    ("fixmatch", ["threshold"], "--strategy-option", "expected KEY=VALUE"),
    ("fixmatch", ["threshold=[0.5"], "--strategy-option", "not valid YAML"),
    ("fixmatch", ["refine=magic"], "--strategy-option", "unknown refinement 'magic'"),
])
def test_bad_strategy_flags_name_the_flag_and_the_field(name, options, flag, says):
    with pytest.raises(InputError) as info:
        with_strategy_flags({}, name, options)
    assert info.value.where == flag and says in str(info.value)


# ------------------------------------------------------------------------------------------- data needs
def test_each_strategy_declares_its_data_without_building_a_model():
    assert TrainConfig(strategy="supervised").strategy.data_spec() == DataSpec(unlabeled=False)
    for name in ("fixmatch", "unimatch", "dwl"):
        assert TrainConfig(strategy=name).strategy.data_spec() == DataSpec(unlabeled=True)
    spec = TrainConfig(strategy="crossview").strategy.data_spec()
    assert spec.paired and spec.overlap == CrossViewConfig().overlap
    assert TrainConfig(strategy={"name": "crossview", "overlap": [0.4, 0.5]}).strategy.data_spec().overlap == (0.4,
                                                                                                              0.5)
    assert not TrainConfig(strategy={"name": "crossview", "spatial": False}).strategy.data_spec().paired
    with pytest.raises(ValueError, match="needs unlabeled"):
        DataSpec(unlabeled=False, overlap=(0.25, 0.75))


def test_the_data_module_reads_the_spec(synth_catalog):
    from geossl.train.run import data_module

    catalog = load_catalog(synth_catalog)
    plan = plan_splits(catalog, synth_catalog, None, 0)
    small = {"encoder": "tu-test_resnet", "patch_size": 64, "batch_size": 2, "steps_per_epoch": 1}
    loaders = data_module(TrainConfig(**small), catalog, synth_catalog, plan).train_dataloader()
    assert set(loaders) == {"labeled"}
    pairs = TrainConfig(**small, strategy={"name": "crossview", "overlap": [0.4, 0.6]})
    unlabeled = data_module(pairs, catalog, synth_catalog, plan).train_dataloader()["unlabeled"]
    assert unlabeled.sampler.pairs == (0.4, 0.6) and unlabeled.batch_size == 1    # pairs of 2 = the batch of 2
    assert next(iter(unlabeled))["partner"].tolist() == [1, 0]


# ------------------------------------------------------------------------------------------- EMA teacher
def test_ema_update_with_hand_values():
    teacher, student = [torch.tensor([1.0, 2.0]), torch.tensor(-4.0)], [torch.tensor([3.0, 6.0]), torch.tensor(4.0)]
    ema_update(teacher, student, 0.75)
    assert teacher[0].tolist() == [1.5, 3.0] and teacher[1].item() == -2.0      # 0.75·t + 0.25·s
    assert student[0].tolist() == [3.0, 6.0]
    # the decay warms up as min(decay, 1 − 1/(n + 1)) over the n earlier updates (UniMatch V2)
    assert [ema_decay_at(0.99, n) for n in (0, 1, 3, 9)] == [0.0, 0.5, 0.75, 0.9]
    assert ema_decay_at(0.99, 1000) == 0.99


def test_ema_teacher_follows_the_model_and_stays_in_eval_mode():
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(2.0)
    teacher = EmaTeacher(model, decay=0.6)
    assert not any(p.requires_grad for p in teacher.parameters()) and all(p.requires_grad for p in model.parameters())
    teacher.train()
    assert not teacher.training and not teacher.net[1].training
    mean = teacher.net[1].running_mean.clone()
    for (student_weight, expected), decay in zip(((4.0, 4.0), (6.0, 5.0), (10.0, 7.0)), (0.0, 0.5, 0.6),
                                                 strict=True):
        # decays 0 (a copy), min(0.6, 1/2) = 0.5, then min(0.6, 2/3) = 0.6: 0.5·4 + 0.5·6 = 5; 0.6·5 + 0.4·10 = 7
        with torch.no_grad():
            model[0].weight.fill_(student_weight)
        model(torch.randn(4, 1))                       # moves the model's batch-norm statistics
        teacher.update(model)
        assert teacher.net[0].weight.item() == pytest.approx(expected, rel=1e-6)
        # batch-norm statistics are averaged like the weights (UniMatch V2), the batch counter copied
        mean = decay * mean + (1 - decay) * model[1].running_mean
        assert torch.allclose(teacher.net[1].running_mean, mean)
        assert torch.equal(teacher.net[1].num_batches_tracked, model[1].num_batches_tracked)
    assert int(teacher.updates) == 3
    assert not teacher(torch.ones(2, 1)).requires_grad


def test_the_ema_teacher_makes_the_pseudo_labels():
    model = Segmenter(ModelConfig(**MODEL))
    original = copy.deepcopy(model).eval()
    strategy = STRATEGIES["fixmatch"](model, TrainConfig(strategy={"name": "fixmatch", "teacher": "ema"}).strategy)
    assert set(strategy.owned) == {"teacher"} and len(strategy.trainable()) == len(list(model.parameters()))
    with torch.no_grad():
        for p in model.net.segmentation_head.parameters():
            p.mul_(-3.0)                                # the student moves; the teacher has not been updated
    x = torch.randn(2, 3, 32, 32)
    probs, conf, labels = strategy.teach(x)
    with torch.no_grad():
        want = pseudo_labels(original(x))
    assert torch.equal(probs, want[0]) and torch.equal(labels, want[2])
    student = STRATEGIES["fixmatch"](model, TrainConfig(strategy="fixmatch").strategy)
    assert not student.owned and not torch.equal(student.teach(x)[0], probs)


# ------------------------------------------------------------------------------------------- refinements
class Recorder(Refinement):
    """Relabels every valid pixel as class 1 with the weight ``weight`` (0 drops everything); records its inputs."""

    Config = NoRefineConfig

    def __init__(self, weight: float) -> None:
        super().__init__(NoRefineConfig())
        self.weight, self.calls = weight, []

    def refine(self, image_weak, probs, labels, confidence, valid, weight):
        self.calls.append({"image": image_weak, "probs": probs, "labels": labels, "conf": confidence,
                           "valid": valid, "weight": weight})
        return torch.ones_like(labels), valid.float() * self.weight


def _batches() -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[1, :8] = False
    labeled = {"image": torch.randn(2, 3, 32, 32, generator=g), "mask": torch.randint(0, 3, (2, 32, 32), generator=g)}
    return labeled, {"image": torch.randn(2, 3, 32, 32, generator=g), "valid": valid}


UNLABELED_TERMS = {"fixmatch": ["loss_u"], "unimatch": ["loss_s1", "loss_s2", "loss_fp"],
                   "crossview": ["loss_s1", "loss_tkd"], "dwl": ["loss_u"],
                   "prototype": ["loss_u"]}


@pytest.mark.parametrize("name", PSEUDO_LABELLING)
def test_the_refinement_sits_between_the_pseudo_labels_and_the_loss(name):
    assert set(UNLABELED_TERMS) == set(PSEUDO_LABELLING)
    options = {"name": name, **({"warmup_steps": 0} if name == "dwl" else {"threshold": 0.5})}
    batch_l, batch_u = _batches()
    torch.manual_seed(0)
    strategy = STRATEGIES[name](Segmenter(ModelConfig(**MODEL)), TrainConfig(strategy=options).strategy)
    assert type(strategy.refinement) is REFINEMENTS["none"]
    strategy.refinement = Recorder(1.0)
    out = strategy.training_step(batch_l, batch_u, 3, 10, torch.Generator().manual_seed(1))
    (call,) = strategy.refinement.calls
    assert torch.equal(call["image"], batch_u["image"]) and torch.equal(call["valid"], batch_u["valid"])
    assert torch.equal(call["labels"], call["probs"].argmax(dim=1))
    assert torch.equal(call["conf"], call["probs"].amax(dim=1))
    if name != "dwl":   # the strategy's own gate goes in: 1[q ≥ τ] on valid pixels
        assert torch.equal(call["weight"], ((call["conf"] >= 0.5) & batch_u["valid"]).float())
    # what comes back is what the loss uses
    assert torch.equal(out.pseudo.labels, torch.ones(2, 32, 32, dtype=torch.long))
    assert torch.equal(out.pseudo.weight, batch_u["valid"].float())
    assert all(float(out.terms[t]) > 0 for t in UNLABELED_TERMS[name])
    strategy.refinement = Recorder(0.0)
    out = strategy.training_step(batch_l, batch_u, 3, 10, torch.Generator().manual_seed(1))
    assert all(float(out.terms[t]) == 0 for t in UNLABELED_TERMS[name])


THRESHOLDED = [name for name, s in STRATEGIES.items() if issubclass(s, ThresholdStrategy)]


@pytest.mark.parametrize("name", THRESHOLDED)
def test_class_adaptive_thresholds_gate_each_class_at_its_own_confidence(name):
    """Momentum 0: each class's threshold is this batch's mean confidence of its pixels (below τ = 0.999)."""
    assert set(THRESHOLDED) == {"fixmatch", "unimatch", "prototype", "crossview"}
    options = {"name": name, "threshold": 0.999, "adaptive_threshold": True, "threshold_momentum": 0.0}
    batch_l, batch_u = _batches()
    torch.manual_seed(0)
    strategy = STRATEGIES[name](Segmenter(ModelConfig(**MODEL)), TrainConfig(strategy=options).strategy)
    strategy.refinement = recorder = Recorder(1.0)
    strategy.training_step(batch_l, batch_u, 3, 10, torch.Generator().manual_seed(1))
    (call,) = recorder.calls
    conf, labels, valid = call["conf"], call["labels"], batch_u["valid"]
    mean = torch.stack([conf[valid & (labels == c)].mean() for c in range(3)])
    assert torch.equal(call["weight"], ((conf >= mean[labels]) & valid).float())
    assert 0 < float(call["weight"].sum()) < float(valid.sum())     # a fixed τ = 0.999 would keep none
    state = strategy.state_dict()
    torch.testing.assert_close(state[EMA_KEY], mean)
    fresh = STRATEGIES[name](Segmenter(ModelConfig(**MODEL)), TrainConfig(strategy=options).strategy)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.thresholds.ema, state[EMA_KEY])


def test_fixed_thresholds_ignore_the_confidence_ema():
    gate = ClassThresholds(2, STRATEGIES["fixmatch"].Config(threshold=0.9))
    conf, labels = torch.tensor([0.6, 0.85, 0.95, 0.97]), torch.tensor([0, 0, 1, 1])
    valid = torch.tensor([True, True, True, False])
    assert gate.gate(conf, labels, valid).tolist() == [False, False, True, False]
    adaptive = ClassThresholds(2, STRATEGIES["fixmatch"].Config(threshold=0.9, adaptive_threshold=True,
                                                                 threshold_momentum=0.5))
    # ema: class 0 → 0.5·0.9 + 0.5·0.725 = 0.8125, class 1 → 0.5·0.9 + 0.5·0.95 (its valid pixel) = 0.925
    assert adaptive.gate(conf, labels, valid).tolist() == [False, True, True, False]
    torch.testing.assert_close(adaptive.ema, torch.tensor([0.8125, 0.925]))


def test_a_new_refinement_is_one_class_and_one_registry_line():
    class FlipConfig(RefineConfig):
        name: Literal["flip"] = "flip"

    class Flip(Refinement):
        Config = FlipConfig

        def refine(self, image_weak, probs, labels, confidence, valid, weight):
            return probs.shape[1] - 1 - labels, weight

    parts = registry(*REFINEMENTS.values(), Flip)
    choice = TypeAdapter(tagged_union(parts, "refinement"))
    assert choice.validate_python("flip") == FlipConfig() and choice.validate_python({"name": "none"}) == \
        NoRefineConfig()
    labels = torch.tensor([[0, 2]])
    assert parts["flip"](FlipConfig()).refine(None, torch.zeros(1, 3, 1, 2), labels, None, None, None)[0].tolist() \
        == [[2, 0]]
    with pytest.raises(ValueError, match="two parts named 'none'"):
        registry(*REFINEMENTS.values(), *REFINEMENTS.values())


# ------------------------------------------------------------------------------------------- owned modules
def test_older_bundles_with_a_pseudo_head_still_load(tmp_path):
    from geossl.models.bundle import BUNDLE_KEY

    model = Segmenter(ModelConfig(**MODEL))
    head = model.net.segmentation_head.state_dict()
    state = {**model.state_dict(), **{f"pseudo_head.{k}": v + 1 for k, v in head.items()}}
    bundle = _bundle(model)
    old = {**bundle.model_dump(mode="json"), "model": {**bundle.model.model_dump(mode="json"), "pseudo_head": True}}
    for prefix in ("", "model."):        # a bundle, and a checkpoint of an older version
        path = tmp_path / f"old{prefix}.pt"
        torch.save({BUNDLE_KEY: old, "state_dict": {prefix + k: v for k, v in state.items()}}, path)
        loaded, segmenter = load_bundle(path)
        assert "pseudo_head" not in loaded.model.model_dump()
        assert segmenter.state_dict().keys() == model.state_dict().keys()
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in segmenter.state_dict().items())
    junk = tmp_path / "junk.pt"
    extra = {**model.state_dict(), "extra.w": torch.ones(1)}
    torch.save({BUNDLE_KEY: bundle.model_dump(mode="json"), "state_dict": extra}, junk)
    with pytest.raises(InputError, match="1 tensors the model does not have"):
        load_bundle(junk)
    save_bundle(tmp_path / "new.pt", bundle, model)
    assert load_bundle(tmp_path / "new.pt")[1].state_dict().keys() == model.state_dict().keys()


def _bundle(model: Segmenter):
    from geossl.manifest import ClassDef
    from geossl.models import ModelBundle

    classes = [ClassDef(id=i + 1, name=f"c{i}", color="#102030") for i in range(3)]
    return ModelBundle(classes=classes, bands=["r", "g", "b"], mean=[0.0] * 3, std=[1.0] * 3, patch_size=64,
                       overlap=16, model=model.config, strategy="dwl")


def test_an_older_dwl_checkpoint_resumes_with_its_pseudo_head(synth_catalog):
    from geossl.train.run import make_bundle
    from geossl.train.task import SegmentationTask

    config = TrainConfig(encoder="tu-test_resnet", decoder_channels=[16, 8, 8, 8, 8], patch_size=64, strategy="dwl")
    bundle = make_bundle(config, load_catalog(synth_catalog)).model_dump(mode="json")
    task = SegmentationTask(config.model_dump(mode="json"), bundle)
    assert {k.split(".")[0] for k in task.state_dict()} == {"model", "strategy"}
    old_state = {k.replace("strategy.pseudo_head.", "model.pseudo_head."): v + 1 for k, v in task.state_dict().items()}
    checkpoint = {"state_dict": dict(old_state), "ssl_state": {}}
    task.on_load_checkpoint(checkpoint)
    task.load_state_dict(checkpoint["state_dict"])           # strict: every tensor has its place
    for k, v in old_state.items():
        assert torch.equal(task.state_dict()[k.replace("model.pseudo_head.", "strategy.pseudo_head.")], v)


def test_cli_strategy_options_reach_the_run_and_the_exported_model_is_the_segmenter(synth_catalog, tmp_path):
    config = tmp_path / "dwl.yaml"
    config.write_text(yaml.safe_dump({"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8],
                                      "patch_size": 64, "batch_size": 2, "threads": 1,
                                      "strategy": {"name": "dwl", "merge_alpha": 0.25}}))
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config,
                     "--max-steps", "1", "--strategy", "dwl", "--strategy-option", "warmup_steps=0",
                     "--strategy-option", "teacher=ema")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())["strategy"]
    assert (saved["name"], saved["merge_alpha"], saved["warmup_steps"], saved["teacher"]) == ("dwl", 0.25, 0, "ema")
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert {k.split(".")[1] for k in last if k.startswith("strategy.")} == {"pseudo_head", "teacher"}
    exported = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    bundle, model = load_bundle(out / "model.pt")
    assert exported.keys() == model.state_dict().keys() and bundle.strategy == "dwl"
    assert all(torch.equal(v, last[f"model.{k}"]) for k, v in exported.items())
    # a resumed run keeps its strategy and the strategy's options (the modules they make are in the checkpoint)
    for flags, says in ((["--strategy-option", "warmup_steps=0", "--strategy-option", "teacher=student"],
                         "--strategy-option: teacher differs"), (["--strategy", "fixmatch"], "--strategy: differs")):
        again = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--config", config,
                        "--max-steps", "2", "--resume", *flags)
        assert again.exit_code == 2 and says in again.stderr, again.output


@pytest.mark.parametrize(("flags", "says"), [
    (["--strategy", "dwl", "--strategy-option", "merge_alpha=2"], "dwl: field 'merge_alpha'"),
    (["--strategy-option", "teacher=ema"], "supervised: field 'teacher': unknown field"),
    (["--strategy", "fixmatch", "--strategy-option", "teacher=mean"], "field 'teacher'"),
])
def test_bad_strategy_options_on_the_command_line(synth_catalog, tmp_path, flags, says):
    out = tmp_path / "run"
    result = run_cli("train", MANIFEST, "--catalog", synth_catalog, "--out", out, "--encoder", "tu-test_resnet",
                     "--max-steps", "1", *flags)
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: --strategy-option") and says in line
    assert not out.exists()
