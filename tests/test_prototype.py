"""The prototype strategy: its maths on tiny tensors with hand-computed values, and a short run of ``geossl train``."""

import csv
import math

import numpy as np
import pytest
import torch
import yaml

from geossl.data.normalize import IGNORE
from geossl.data.rng import draws
from geossl.models import ModelConfig, Segmenter, load_bundle
from geossl.ssl import STRATEGIES
from geossl.ssl.prototype import (
    Prototype,
    PrototypeConfig,
    PrototypeHead,
    assign,
    consistency,
    ema_step,
    prototype_logits,
)
from tests.conftest import ROOT, run_cli

# K = 2 classes × M = 2 micro-prototypes × D = 2: class 0 points along +x and +y, class 1 along −x and (0.6, −0.8)
PROTOS = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.6, -0.8]]])
ALL = torch.ones(2, 2, dtype=torch.bool)


def pixels(*vectors: tuple[float, float]) -> torch.Tensor:
    """Features ``(1, 2, 1, P)`` of P pixels in a row."""
    return torch.tensor(vectors, dtype=torch.float32).T[None, :, None, :]


def head_with(protos: torch.Tensor, ema: float = 0.99, reinit_after: int = 20) -> PrototypeHead:
    head = PrototypeHead(2, 2, 2, temperature=0.1, ema=ema, reinit_after=reinit_after)
    head.prototypes.copy_(protos)
    head.ready.fill_(True)
    head.idle.zero_()
    return head


# ------------------------------------------------------------------------------------------- prototype logits
def test_logits_are_the_best_micro_prototypes_cosine_over_the_temperature():
    z = pixels((3.0, 4.0), (0.0, -2.0))  # unit: (0.6, 0.8) and (0, −1)
    logits = prototype_logits(z, 2 * PROTOS, ALL, 0.1)  # prototype length does not matter either
    # pixel 1: class 0 max(0.6, 0.8) = 0.8; class 1 max(−0.6, 0.36 − 0.64 = −0.28) = −0.28
    # pixel 2: class 0 max(0, −1) = 0;      class 1 max(0, 0.8) = 0.8
    np.testing.assert_allclose(logits[0, :, 0].numpy(), [[8.0, 0.0], [-2.8, 8.0]], atol=1e-5)


def test_an_uninitialised_micro_prototype_counts_as_cosine_minus_one():
    ready = torch.tensor([[True, True], [True, False]])
    logits = prototype_logits(pixels((3.0, 4.0), (0.0, -2.0)), PROTOS, ready, 0.1)
    # class 1 keeps only (−1, 0): pixel 1 cos −0.6, pixel 2 cos 0
    np.testing.assert_allclose(logits[0, 1, 0].numpy(), [-6.0, 0.0], atol=1e-5)
    none = prototype_logits(pixels((3.0, 4.0)), PROTOS, torch.zeros(2, 2, dtype=torch.bool), 0.1)
    np.testing.assert_allclose(none[0, :, 0, 0].numpy(), [-10.0, -10.0])


def test_the_head_upsamples_coarse_decoder_logits_to_the_image():
    head = head_with(PROTOS)
    z = torch.randn(2, 2, 4, 4)
    assert head(z).shape == (2, 2, 4, 4) and head(z, (16, 16)).shape == (2, 2, 16, 16)


# ------------------------------------------------------------------------------------------- assignment and EMA
def test_a_feature_goes_to_the_nearest_micro_prototype_of_its_own_class():
    feats = torch.nn.functional.normalize(torch.tensor([[0.0, -1.0], [-1.0, 0.1], [1.0, 0.0], [1.0, 0.0]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1])
    ready = torch.tensor([[True, True], [True, True]])
    # (0, −1) of class 0: cos 0 with (1, 0), −1 with (0, 1) → 0, although class 1's (0.6, −0.8) is nearer
    # (−1, 0.1) of class 0: cos −0.995 / 0.0995 → 1; (1, 0) of class 1: cos −1 / 0.6 → 2·1 + 1 = 3
    assert assign(feats[:3], labels[:3], PROTOS, ready).tolist() == [0, 1, 3]
    ready[1, 1] = False  # only (−1, 0) left for class 1; and a class with none assigns nothing
    assert assign(feats[2:], labels[2:], PROTOS, ready).tolist() == [2, 2]
    ready[1] = False
    assert assign(feats[2:], labels[2:], PROTOS, ready).tolist() == [-1, -1]


def test_ema_step_moves_only_prototypes_that_received_features_and_renormalises():
    sums = torch.tensor([[[1.8, 0.6], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    counts = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    out = ema_step(PROTOS, sums, counts, 0.5)
    # mean (0.9, 0.3); 0.5·(1, 0) + 0.5·(0.9, 0.3) = (0.95, 0.15), norm √0.925
    np.testing.assert_allclose(out[0, 0].numpy(), np.array([0.95, 0.15]) / math.sqrt(0.925), rtol=1e-6)
    assert torch.equal(out[0, 1], PROTOS[0, 1]) and torch.equal(out[1], PROTOS[1])


@pytest.mark.parametrize(("ema", "expected"), [
    (0.5, np.array([0.95, 0.15]) / math.sqrt(0.95**2 + 0.15**2)),
    (0.99, np.array([0.999, 0.003]) / math.sqrt(0.999**2 + 0.003**2)),  # 0.99·(1, 0) + 0.01·(0.9, 0.3)
])
def test_update_assigns_then_moves_by_ema_and_counts_idle_steps(ema, expected):
    head = head_with(PROTOS, ema=ema)
    # class 0: (1, 0) and (4, 3)/5 = (0.8, 0.6) both nearest (1, 0); an ignored pixel; class 1: (0.6, −0.8) itself
    z = pixels((1.0, 0.0), (4.0, 3.0), (0.0, -5.0), (3.0, -4.0))
    drawn = head.update(z, torch.tensor([[[0, 0, IGNORE, 1]]]))
    assert drawn == 0
    np.testing.assert_allclose(head.prototypes[0, 0].numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(head.prototypes[1, 1].numpy(), [0.6, -0.8], rtol=1e-6)
    assert torch.equal(head.prototypes[0, 1], PROTOS[0, 1]) and torch.equal(head.prototypes[1, 0], PROTOS[1, 0])
    assert head.idle.tolist() == [[0, 1], [1, 0]]


# ------------------------------------------------------------------------------------------- maintenance
def test_uninitialised_micro_prototypes_are_drawn_from_their_class_at_its_first_appearance():
    head = PrototypeHead(2, 2, 2, reinit_after=3)
    feats = pixels((2.0, 0.0), (0.0, 3.0), (-1.0, -1.0))
    drawn = head.update(feats, torch.tensor([[[0, 0, IGNORE]]]), torch.Generator().manual_seed(0))
    assert drawn == 2 and head.ready.tolist() == [[True, True], [False, False]]
    for p in head.prototypes[0].tolist():  # unit features of class 0 only
        assert p in ([1.0, 0.0], [0.0, 1.0])
    assert head.idle.tolist() == [[0, 0], [3, 3]]  # class 1 was absent: its counters do not move
    assert torch.equal(head.prototypes[1], torch.zeros(2, 2))


def test_a_micro_prototype_idle_for_reinit_after_steps_of_its_class_is_redrawn():
    head = head_with(PROTOS, reinit_after=2)
    class0 = torch.tensor([[[0, 0]]])
    near_x = pixels((1.0, 0.1), (1.0, -0.1))  # both go to (1, 0): (0, 1) of class 0 is idle
    assert head.update(near_x, class0) == 0 and head.idle[0].tolist() == [0, 1]
    head.update(pixels((-1.0, 0.0), (0.6, -0.8)), torch.tensor([[[1, 1]]]))  # class 0 absent: not counted
    assert head.idle[0].tolist() == [0, 1]
    assert head.update(pixels((2.0, 0.0), (2.0, 0.0)), class0, torch.Generator().manual_seed(1)) == 1
    # the second idle step of class 0: (0, 1) re-initialised to the step's (only) class-0 feature, (1, 0)
    np.testing.assert_allclose(head.prototypes[0, 1].numpy(), [1.0, 0.0])
    assert head.idle[0].tolist() == [0, 0] and bool(head.ready.all())


def test_maintenance_draws_only_from_the_generator_it_is_given():
    feats, labels = torch.randn(1, 2, 4, 4), torch.randint(0, 2, (1, 4, 4))
    heads = [PrototypeHead(2, 2, 2), PrototypeHead(2, 2, 2)]
    state = torch.random.get_rng_state()
    for head in heads:
        head.update(feats, labels, torch.Generator().manual_seed(7))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(heads[0].prototypes, heads[1].prototypes)


def _ddp_update(rank: int, folder: str, feats: torch.Tensor, labels: torch.Tensor) -> None:
    """One process of two: update from its half of the pixels, save the head."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2)
    head = head_with(PROTOS, ema=0.5, reinit_after=2)
    head.idle[1, 0] = 1  # idle once more here: re-drawn on rank 0, and broadcast
    half = feats.shape[-1] // 2
    head.update(feats[..., rank * half:(rank + 1) * half], labels[..., rank * half:(rank + 1) * half],
                torch.Generator().manual_seed(rank))
    torch.save(head.state_dict(), f"{folder}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


def test_under_ddp_every_process_keeps_the_prototypes_of_all_processes_features(tmp_path):
    """Sums and counts are summed over the processes: the EMA is the one of all pixels; rank 0's re-draw wins."""
    feats = pixels((1.0, 0.0), (0.6, -0.8), (4.0, 3.0), (0.0, -1.0))
    labels = torch.tensor([[[0, 1, 0, 1]]])  # rank 0: (1, 0) and (0.6, −0.8); rank 1: (0.8, 0.6) and (0, −1)
    torch.multiprocessing.spawn(_ddp_update, args=(str(tmp_path), feats, labels), nprocs=2)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    one = head_with(PROTOS, ema=0.5, reinit_after=2)
    one.idle[1, 0] = 1
    one.update(feats, labels)
    # the EMA as in one process: (1, 0) and (0.8, 0.6) to (1, 0); (0.6, −0.8) and (0, −1) to (0.6, −0.8), which
    # becomes normalise(0.5·(0.6, −0.8) + 0.5·(0.3, −0.9)); class 1's (−1, 0) got nothing for the second time:
    # re-drawn from rank 0's only class-1 feature, (0.6, −0.8)
    got = states[0]["prototypes"]
    np.testing.assert_allclose(got[0].numpy(), one.prototypes[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(got[1, 1].numpy(), np.array([0.45, -0.85]) / math.sqrt(0.45**2 + 0.85**2), rtol=1e-6)
    np.testing.assert_allclose(got[1, 0].numpy(), [0.6, -0.8], rtol=1e-6)
    assert states[0]["idle"].tolist() == [[0, 1], [0, 0]]


# ------------------------------------------------------------------------------------------- consistency
def test_consistency_is_the_prototype_cross_entropy_on_confident_pseudo_labels_over_valid_pixels():
    logits = prototype_logits(pixels((3.0, 4.0), (0.0, -2.0), (3.0, 4.0), (3.0, 4.0)), PROTOS, ALL, 0.1)
    pseudo = torch.tensor([[[0, 0, 1, 1]]])
    used = torch.tensor([[[True, True, False, False]]])   # pixel 3 not confident, pixel 4 not valid
    valid = torch.tensor([[[True, True, True, False]]])
    # pixel 1: logits (8, −2.8), label 0: log(1 + e^−10.8); pixel 2: logits (0, 8), label 0: log(1 + e^8)
    expected = (math.log1p(math.exp(-10.8)) + math.log1p(math.exp(8.0))) / 3
    assert float(consistency(logits, pseudo, used, valid)) == pytest.approx(expected, rel=1e-5)


def test_consistency_pulls_a_feature_towards_a_prototype_of_its_pseudo_class():
    z = pixels((0.0, -2.0)).requires_grad_(True)  # nearer class 1's (0.6, −0.8) than class 0's (1, 0)
    one = torch.ones(1, 1, 1, dtype=torch.bool)
    loss = consistency(prototype_logits(z, PROTOS, ALL, 0.1), torch.tensor([[[0]]]), one, one)
    loss.backward()
    assert z.grad[0, 0, 0, 0] < 0  # descent turns (0, −1) towards +x, class 0's (1, 0)
    stepped = (z - 1e-3 * z.grad).detach()
    before, after = prototype_logits(z.detach(), PROTOS, ALL, 0.1), prototype_logits(stepped, PROTOS, ALL, 0.1)
    margin = after[0, 0] - after[0, 1] - (before[0, 0] - before[0, 1])  # class 0 gains on class 1
    assert after[0, 0, 0, 0] > before[0, 0, 0, 0] and float(margin) > 0


# ------------------------------------------------------------------------------------------- the strategy
def tiny_strategy(**params) -> Prototype:
    model = Segmenter(ModelConfig(arch="unet", encoder="tu-test_resnet", decoder_channels=[16, 8, 8, 8, 8],
                                  in_channels=4, num_classes=3))
    return Prototype(model, PrototypeConfig(**params))


def tiny_batches() -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(0)
    labeled = {"image": torch.randn(2, 4, 32, 32, generator=g), "mask": torch.randint(-1, 3, (2, 32, 32), generator=g)}
    unlabeled = {"image": torch.randn(2, 4, 32, 32, generator=g), "valid": torch.ones(2, 32, 32, dtype=torch.bool)}
    return labeled, unlabeled


@pytest.fixture
def one_thread():
    """One torch thread: many times faster than the default on a busy machine (results do not depend on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_step_uses_only_its_generator_and_its_state_round_trips_outside_the_model(one_thread):
    strategy = tiny_strategy(threshold=0.0)
    assert STRATEGIES["prototype"] is Prototype
    assert strategy.head.prototypes.shape == (3, 4, 8)  # K × M × the decoder's 8 output channels
    labeled, unlabeled = tiny_batches()
    state = torch.random.get_rng_state()
    first = strategy.training_step(labeled, unlabeled, 0, 2, draws(0, "step", 0, 0))
    second = strategy.training_step(labeled, unlabeled, 1, 2, draws(0, "step", 0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)
    # step 0 has no prototypes yet: the prototype terms start at step 1, from the prototypes step 0 drew
    assert float(first.terms["loss_proto_u"]) == 0 and float(first.terms["prototypes_drawn"]) == 12
    assert float(second.terms["loss_proto_u"]) > 0 and float(second.terms["loss_proto_l"]) > 0
    second.loss.backward()
    # the head is the strategy's own module: its state loads into a fresh strategy, the model has none of it
    again = tiny_strategy()
    again.owned.load_state_dict(strategy.owned.state_dict())
    assert set(strategy.owned.state_dict()) == {"prototypes.prototypes", "prototypes.ready", "prototypes.idle"}
    for key, value in strategy.owned.state_dict().items():
        assert torch.equal(again.owned.state_dict()[key], value)
    assert not any("proto" in key for key in strategy.model.state_dict())
    assert not list(strategy.owned.parameters())  # nothing for the optimizer: the prototypes move by EMA only


def test_with_an_ema_teacher_the_teacher_labels_and_its_features_update_the_prototypes(one_thread):
    strategy = tiny_strategy(threshold=0.0, teacher="ema")
    assert strategy.teacher is not None
    teacher = strategy.teacher.net
    with torch.no_grad():
        for p in strategy.model.parameters():
            p.add_(0.1)  # the student moves away from its teacher
    _, unlabeled = tiny_batches()
    features, (_, _, labels) = strategy.teach_with_features(unlabeled["image"])
    with torch.no_grad():
        expected = teacher.decode(teacher.features(unlabeled["image"]))
    assert torch.equal(features, expected) and torch.equal(labels, teacher.head(expected).argmax(dim=1))
    assert not torch.equal(features, strategy.model.decode(strategy.model.features(unlabeled["image"])))


# ------------------------------------------------------------------------------------------- geossl train
def test_geossl_train_strategy_prototype(synth_catalog, tmp_path):
    """Two steps of a tiny U-Net: the prototypes are checkpointed for --resume but not exported in model.pt."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"encoder": "tu-test_resnet", "decoder_channels": [16, 8, 8, 8, 8],
                                      "patch_size": 64, "batch_size": 2, "steps_per_epoch": 1, "threads": 1}))
    out = tmp_path / "run"
    result = run_cli("train", ROOT / "data_manifests" / "synthetic.yaml", "--catalog", synth_catalog, "--out", out,
                     "--config", config, "--strategy", "prototype", "--strategy-option", "threshold=0.0",
                     "--strategy-option", "prototypes_per_class=3", "--max-steps", "2")
    assert result.exit_code == 0, result.output
    weights = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    protos, ready = weights["strategy.prototypes.prototypes"], weights["strategy.prototypes.ready"]
    assert protos.shape == (6, 3, 8) and bool(ready.any())
    np.testing.assert_allclose(protos[ready].norm(dim=-1).numpy(), 1.0, rtol=1e-5)
    bundle, model = load_bundle(out / "model.pt")
    assert bundle.strategy == "prototype" and not any("proto" in key for key in model.state_dict())
    assert not any("proto" in key for key in torch.load(out / "model.pt", weights_only=True)["state_dict"])
    with open(out / "logs" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert any(r.get("train_loss_proto_u") and float(r["train_loss_proto_u"]) > 0 for r in rows)
    assert any(r.get("pseudo_used_share") and float(r["pseudo_used_share"]) > 0 for r in rows)
