"""The prior map as a second teacher: its option, its schedule and merge with hand values, every strategy."""

import inspect

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from geossl.data.normalize import IGNORE
from geossl.models import ModelConfig, Segmenter
from geossl.ssl import STRATEGIES, PseudoLabelStrategy
from geossl.ssl.prior import PriorChoice, PriorTeacherConfig, with_prior
from geossl.train.config import TrainConfig

N = IGNORE
MODEL = {"encoder": "tu-test_resnet", "in_channels": 3, "num_classes": 3, "decoder_channels": [16, 8, 8, 8, 8]}
PSEUDO_LABELLING = [name for name, s in STRATEGIES.items() if issubclass(s, PseudoLabelStrategy)]


# ------------------------------------------------------------------------------------------- the schedule
def test_the_weight_decays_linearly_to_zero_at_until_and_stays_there():
    s = PriorTeacherConfig(weight=0.8, until=0.5)
    # t = step / total: 0, 0.1, 0.25, 0.4, 0.5, 0.75, 0.99 → 0.8·(1 − t/0.5), floored at 0
    steps = [0, 10, 25, 40, 50, 75, 99]
    assert [s.beta(k, 100) for k in steps] == pytest.approx([0.8, 0.64, 0.4, 0.16, 0.0, 0.0, 0.0])
    # the defaults: 0.5 at the start, half of it a quarter of the way through, nothing from half-way on
    d = PriorTeacherConfig()
    assert [d.beta(k, 1500) for k in (0, 300, 375, 750, 1499)] == pytest.approx([0.5, 0.3, 0.25, 0.0, 0.0])
    assert PriorTeacherConfig(until=1.0).beta(1499, 1500) == pytest.approx(0.5 / 1500)


def test_the_merge_by_hand():
    # pixels: confident, prior disagrees | unsure, gate 0, prior | unsure, no prior | unsure, own weight 0.6 > β |
    #         unsure, own weight 0.1 < β | confident, gate 0 (a stricter strategy), prior
    conf = torch.tensor([[[0.97, 0.6, 0.5, 0.7, 0.4, 0.96]]])
    labels = torch.tensor([[[2, 1, 0, 3, 1, 2]]])
    weight = torch.tensor([[[1.0, 0.0, 0.0, 0.6, 0.1, 0.0]]])
    prior = torch.tensor([[[1, 3, N, 0, 2, 0]]])
    out_labels, out_weight, taught = with_prior(labels, weight, conf, prior, beta=0.4, threshold=0.95)
    assert out_labels.tolist() == [[[2, 3, 0, 3, 2, 2]]]
    assert out_weight.flatten().tolist() == pytest.approx([1.0, 0.4, 0.0, 0.6, 0.4, 0.0])
    assert taught.flatten().tolist() == [False, True, False, False, True, False]
    # once β is 0 (from `until` on) the strategy's own labels and weights are untouched
    out_labels, out_weight, taught = with_prior(labels, weight, conf, prior, beta=0.0, threshold=0.95)
    assert torch.equal(out_labels, labels) and torch.equal(out_weight, weight) and not taught.any()


# ------------------------------------------------------------------------------------------- the option
@pytest.mark.parametrize(("given", "expected"), [
    ("auto", PriorTeacherConfig()),
    ("off", PriorTeacherConfig(use="off")),
    (False, PriorTeacherConfig(use="off")),            # YAML's `prior: off`
    (True, PriorTeacherConfig(use="on")),
    ("{weight: 0.3, until: 0.8}", PriorTeacherConfig(weight=0.3, until=0.8)),
    ({"use": True, "threshold": 0.9}, PriorTeacherConfig(use="on", threshold=0.9)),
])
def test_the_option_reads_a_word_or_options(given, expected):
    assert TypeAdapter(PriorChoice).validate_python(given) == expected
    assert TrainConfig(prior=given).prior == expected


@pytest.mark.parametrize(("given", "says"), [
    ("{weight: 2}", "less than or equal to 1"),
    ("{until: 0}", "greater than 0"),
    ("{beta: 0.3}", "Extra inputs"),
    ("sometimes", "expected auto, on, off or options"),
    ("{weight: [", "not valid YAML"),
])
def test_bad_prior_options_are_refused(given, says):
    with pytest.raises(ValidationError, match=r"(?s)prior.*" + says.replace("[", r"\[")):
        TrainConfig(prior=given)


# ------------------------------------------------------------------------------------------- every strategy
def _batches() -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(0)
    valid = torch.ones(2, 32, 32, dtype=torch.bool)
    valid[1, :8] = False
    prior = torch.full((2, 32, 32), N)
    prior[:, 4:20, 6:30] = 2
    prior[0, 24:, :] = 0
    prior = torch.where(valid, prior, N)
    labeled = {"image": torch.randn(2, 3, 32, 32, generator=g), "mask": torch.randint(0, 3, (2, 32, 32), generator=g)}
    return labeled, {"image": torch.randn(2, 3, 32, 32, generator=g), "valid": valid, "prior": prior}


def _step(name: str, prior: PriorTeacherConfig | None, batch_l: dict, batch_u: dict, step: int = 2):
    options = {"name": name, **({"warmup_steps": 0} if name == "dwl" else {})}
    torch.manual_seed(0)
    strategy = STRATEGIES[name](Segmenter(ModelConfig(**MODEL)), TrainConfig(strategy=options).strategy, prior=prior)
    seen = []
    own_step = strategy.training_step

    def spy(b_l, b_u, *args):
        seen.append(set(b_u))
        return own_step(b_l, b_u, *args)

    strategy.training_step = spy
    out = strategy.step(batch_l, batch_u, step, 10, torch.Generator().manual_seed(1))
    assert seen == [{"image", "valid"}], "the strategy's own step never sees the prior map"
    return out


@pytest.mark.parametrize("name", PSEUDO_LABELLING)
def test_every_pseudo_labelling_strategy_learns_from_the_prior(name):
    batch_l, batch_u = _batches()
    schedule = PriorTeacherConfig(weight=0.8, until=0.5, threshold=1.0)
    beta = schedule.beta(2, 10)
    assert beta == pytest.approx(0.48)
    own = _step(name, PriorTeacherConfig(use="off"), batch_l, batch_u)
    merged = _step(name, schedule, batch_l, batch_u)
    # the prior teaches where it has a class and the strategy counts its own label less than β
    taught = (batch_u["prior"] != N) & (own.pseudo.weight < beta)
    assert taught.sum() > 100
    assert torch.equal(merged.pseudo.labels, torch.where(taught, batch_u["prior"], own.pseudo.labels))
    assert torch.equal(merged.pseudo.weight, torch.where(taught, torch.tensor(beta), own.pseudo.weight.float()))
    assert float(merged.terms["prior_share"]) == pytest.approx(float(taught.sum() / batch_u["valid"].sum()))
    assert float(merged.terms["prior_weight"]) == pytest.approx(beta)
    assert float(merged.loss.detach()) != float(own.loss.detach())
    # from `until` on (step 5 of 10) the prior is silent: the step is the strategy's own
    late_own, late = (_step(name, p, batch_l, batch_u, step=5) for p in (PriorTeacherConfig(use="off"), schedule))
    assert torch.equal(late.pseudo.labels, late_own.pseudo.labels)
    assert torch.equal(late.loss.detach(), late_own.loss.detach())
    assert float(late.terms["prior_share"]) == 0


@pytest.mark.parametrize("name", PSEUDO_LABELLING)
def test_strategy_files_know_nothing_of_priors(name):
    source = inspect.getsource(inspect.getmodule(STRATEGIES[name]))
    assert "prior" not in source.lower()
