"""The maths of the strategies on small tensors with hand-computed values."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from geossl.data.rng import draws
from geossl.data.views import ViewConfig, cutmix_boxes, dihedral, feature_dropout, paste, photometric, undo_dihedral
from geossl.models import ModelConfig, Segmenter
from geossl.ssl.crossview import spatial_overlap, teacher_to_view, view_to_view
from geossl.ssl.dwl import ClassMemory, Dwl, DwlConfig, merge_heads, rank_fraction, ranking_weight, sharpness
from geossl.ssl.losses import class_thresholds, soft_consistency, update_confidence_ema, weighted_ce


# ------------------------------------------------------------------------------------------- DWL
@pytest.mark.parametrize(("k", "expected"), [
    (2.0, [0.0, 2 / (1 + math.exp(-1.0)) - 1, 2 / (1 + math.exp(-2.0)) - 1]),    # 0, 0.4621, 0.7616
    (22.0, [0.0, 2 / (1 + math.exp(-11.0)) - 1, 2 / (1 + math.exp(-22.0)) - 1]),  # 0, 0.99997, ~1
])
def test_dwl_weight_at_r_0_half_1(k, expected):
    w = ranking_weight(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), k)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-12)
    assert expected[2] == pytest.approx(0.7615941559557649) if k == 2 else expected[1] == pytest.approx(0.9999665)


def test_dwl_sharpness_schedule():
    assert sharpness(0, 100) == 2.0
    assert sharpness(50, 100) == 12.0
    assert sharpness(100, 100) == 22.0


def test_class_memory_fifo_bins_and_ranks():
    memory = ClassMemory(num_classes=3, batches=2, size=64)
    labels = torch.tensor([[[0, 0, 1, 1, 0]]])
    valid = torch.ones(1, 1, 5, dtype=torch.bool)

    def probs(p0, p1):  # (1, 3, 1, 5): class-0 and class-1 probabilities per pixel
        p0, p1 = torch.tensor(p0), torch.tensor(p1)
        return torch.stack([p0, p1, 1 - p0 - p1])[None, :, None, :]

    memory.update(probs([0.1, 0.2, 0.0, 0.0, 0.3], [0.0, 0.0, 0.5, 0.6, 0.0]), labels, valid)  # dropped later
    memory.update(probs([0.5, 0.6, 0.1, 0.1, 0.7], [0.1, 0.1, 0.7, 0.8, 0.1]), labels, valid)
    memory.update(probs([0.8, 0.9, 0.0, 0.0, 0.4], [0.0, 0.0, 0.9, 0.4, 0.0]), labels, valid)
    # FIFO of 2 batches: class 0 holds column 0 at its pixels of the last two batches
    assert sorted(torch.cat(list(memory.queues[0])).tolist()) == pytest.approx([0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    bins = memory.bins(4)
    # class 0: 6 sorted values, indices round(linspace(0, 5, 5))[1:] = round([1.25, 2.5, 3.75, 5]) = [1, 2, 4, 5]
    np.testing.assert_allclose(bins[0].numpy(), [0.5, 0.6, 0.8, 0.9], rtol=1e-6)
    # class 1: values 0.4, 0.7, 0.8, 0.9 → indices round([.75, 1.5, 2.25, 3]) = [1, 2, 2, 3] (halves to even)
    np.testing.assert_allclose(bins[1].numpy(), [0.7, 0.8, 0.8, 0.9], rtol=1e-6)
    assert bins[2] is None
    conf = torch.tensor([0.55, 0.95, 0.45, 0.85, 0.99])
    lab = torch.tensor([0, 0, 0, 1, 2])
    r = rank_fraction(conf, lab, bins)
    # 0.55 > {0.5} → 1/4; 0.95 > all → 1; 0.45 → 0; class 1: 0.85 > {0.7, 0.8, 0.8} → 3/4; class 2: no bins → 0
    np.testing.assert_allclose(r.numpy(), [0.25, 1.0, 0.0, 0.75, 0.0])


def test_class_memory_bins_follow_the_twenty_quantile_rule():
    memory = ClassMemory(num_classes=1, batches=50)
    values = torch.arange(41, dtype=torch.float32) / 40
    memory.queues[0].append(values[torch.randperm(41)])
    # n = 41: round(linspace(0, 40, 21))[1:] = 2, 4, ..., 40
    np.testing.assert_allclose(memory.bins(20)[0].numpy(), (torch.arange(2, 41, 2) / 40).numpy())


def test_class_memory_downsamples_to_64_by_nearest():
    memory = ClassMemory(num_classes=2, batches=50, size=64)
    probs = torch.zeros(2, 2, 128, 128)
    probs[:, 0] = 0.75
    memory.update(probs, torch.zeros(2, 128, 128, dtype=torch.long), torch.ones(2, 128, 128, dtype=torch.bool))
    assert memory.queues[0][0].shape == (2 * 64 * 64,) and not memory.queues[1]


def test_dwl_epoch_end_merges_pseudo_head_into_main_head():
    main, pseudo = nn.Conv2d(2, 3, 1), nn.Conv2d(2, 3, 1)
    with torch.no_grad():
        main.weight.fill_(1.0), main.bias.fill_(-1.0), pseudo.weight.fill_(3.0), pseudo.bias.fill_(1.0)
    merge_heads(main, pseudo, 0.5)
    assert torch.all(main.weight == 2.0) and torch.all(main.bias == 0.0)
    merge_heads(main, pseudo, 1.0)
    assert torch.all(main.weight == 3.0) and torch.all(main.bias == 1.0)

    model = Segmenter(ModelConfig(encoder="tu-test_resnet", in_channels=2, num_classes=3,
                                  decoder_channels=[16, 8, 8, 8, 8]))
    dwl = Dwl(model, DwlConfig(merge_alpha=0.5))
    assert dwl.owned["pseudo_head"] is dwl.pseudo_head                # the strategy's own module, not the model's
    assert not any(p is q for p in model.parameters() for q in dwl.pseudo_head.parameters())
    with torch.no_grad():
        for p in model.net.segmentation_head.parameters():
            p.fill_(0.2)
        for p in dwl.pseudo_head.parameters():
            p.fill_(1.0)
    dwl.on_train_epoch_end()
    for p in model.net.segmentation_head.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.6))
    for p in dwl.pseudo_head.parameters():
        assert torch.all(p == 1.0)
    # the optimizer trains the model and the pseudo head
    assert len(dwl.trainable()) == len(list(model.parameters())) + len(list(dwl.pseudo_head.parameters()))


# ------------------------------------------------------------------------------------------- cross-view
def test_teacher_to_view_thresholded_ce_over_valid_pixels():
    labels = torch.tensor([[[0, 1]]])            # teacher labels of 2 pixels
    used = torch.tensor([[[True, False]]])       # pixel 2 is not confident
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    student_a = torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])  # pixel 1: logits (2, 0); pixel 2: (0, 0)
    student_b = torch.tensor([[[[0.0, 0.0]], [[3.0, 0.0]]]])  # pixel 1: logits (0, 3): disagrees with ŷ = 0
    ce_a = math.log(1 + math.exp(-2.0))          # CE of (2, 0) against class 0
    ce_b = math.log(1 + math.exp(3.0))           # CE of (0, 3) against class 0
    assert float(teacher_to_view(labels, used, [student_a], valid)) == pytest.approx(ce_a / 2)
    assert float(teacher_to_view(labels, used, [student_a, student_b], valid)) == pytest.approx(
        (ce_a / 2 + ce_b / 2) / 2)
    # conflict weighting: student b's own label (1) disagrees with the teacher's (0) → weight 2
    assert float(teacher_to_view(labels, used, [student_a, student_b], valid, conflict_weight=2.0)) == \
        pytest.approx((ce_a / 2 + 2 * ce_b / 2) / 2)


def test_view_to_view_is_zero_when_streams_agree_and_kl_otherwise():
    logits = torch.tensor([[[[math.log(4.0), 0.0]], [[0.0, 0.0]]]])  # pixel 1: p = (0.8, 0.2); pixel 2: (0.5, 0.5)
    teacher = logits.softmax(dim=1)
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    tau = torch.tensor([0.5, 0.5])
    assert float(view_to_view([teacher, teacher], [logits, logits.clone()], tau, valid)) == pytest.approx(0, abs=1e-7)
    student = torch.zeros_like(logits)                                # (0.5, 0.5) everywhere
    kl = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)        # 0.192745
    # pixel 1 confident (0.8 ≥ 0.5), pixel 2 too (0.5 ≥ 0.5) but its KL to (0.5, 0.5) is 0; denominator 2
    assert float(view_to_view([teacher], [student], tau, valid)) == pytest.approx(kl / 2)
    assert float(view_to_view([teacher], [student], torch.tensor([0.9, 0.9]), valid)) == 0.0


def test_soft_consistency_gradient_is_soft_cross_entropy():
    teacher = torch.tensor([[[[0.8]], [[0.2]]]])
    student = torch.zeros(1, 2, 1, 1, requires_grad=True)
    soft_consistency(teacher, student, torch.ones(1, 1, 1), 1.0).backward()
    # d/dz of −Σ p_t log softmax(z) = softmax(z) − p_t = (0.5 − 0.8, 0.5 − 0.2)
    np.testing.assert_allclose(student.grad.flatten().numpy(), [-0.3, 0.3], atol=1e-6)


def _pair_batch(scene, origins, geoms):
    windows = []
    for (r, c), (rot, flip) in zip(origins, geoms, strict=True):
        windows.append(dihedral(scene[:, r : r + 16, c : c + 16], rot, bool(flip)))
    return torch.stack(windows)


def test_spatial_overlap_loss_is_zero_for_a_per_pixel_model():
    torch.manual_seed(0)
    scene = torch.randn(3, 48, 48)
    per_pixel = nn.Conv2d(3, 5, 1)   # a model of 1x1 convolutions: a pixel's prediction depends on it alone
    origins = [(5, 7), (13, 3), (20, 20), (26, 30)]   # pairs (0, 1) and (2, 3)
    partner = torch.tensor([1, 0, 3, 2])
    tau = torch.zeros(5)             # every shared pixel counts
    for geoms in ([(0, 0), (0, 0), (1, 1), (3, 0)], [(2, 1), (1, 0), (0, 1), (2, 0)]):
        x_w = _pair_batch(scene, origins, geoms)
        valid = torch.ones(4, 16, 16, dtype=torch.bool)
        valid[2, :3] = False         # some nodata
        box = torch.zeros(4, 16, 16, dtype=torch.bool)
        box[0, 2:9, 4:12] = True     # CutMix from another image into view 0
        x_s = paste(x_w, x_w[torch.tensor([2, 3, 0, 1])], box)   # strong = weak + CutMix, no photometric noise
        with torch.no_grad():
            probs_w, logits_s = per_pixel(x_w).softmax(dim=1), per_pixel(x_s)
        args = (torch.tensor(origins), torch.tensor(geoms), partner, tau)
        loss, n_shared = spatial_overlap(probs_w, logits_s, valid, ~box, *args)
        # pair (0,1) shares 8 x 12 pixels; pair (2,3) shares 10 x 6 pixels; minus view 0's box, minus nodata
        assert 0 < int(n_shared) < 2 * 96 + 2 * 60
        assert float(loss) == pytest.approx(0.0, abs=1e-6)
        # the same pixels with the CutMix box not excluded, or with a wrong geometry, disagree
        loss_box, _ = spatial_overlap(probs_w, logits_s, valid, torch.ones_like(box), *args)
        assert float(loss_box) > 1e-3
        wrong = torch.tensor(geoms)
        wrong[1] = torch.tensor([(geoms[1][0] + 1) % 4, geoms[1][1]])
        loss_wrong, _ = spatial_overlap(probs_w, logits_s, valid, ~box, torch.tensor(origins), wrong, partner, tau)
        assert float(loss_wrong) > 1e-3


def test_class_adaptive_thresholds_follow_the_confidence_ema():
    ema = torch.tensor([0.95, 0.95, 0.95])
    conf = torch.tensor([0.5, 0.7, 0.9, 0.99])
    labels = torch.tensor([0, 0, 1, 2])
    valid = torch.tensor([True, True, True, False])
    ema = update_confidence_ema(ema, conf, labels, valid, momentum=0.9)
    # class 0: 0.9·0.95 + 0.1·0.6; class 1: 0.9·0.95 + 0.1·0.9; class 2: only an invalid pixel → unchanged
    np.testing.assert_allclose(ema.numpy(), [0.915, 0.945, 0.95], rtol=1e-6)
    np.testing.assert_allclose(class_thresholds(torch.tensor([0.6, 0.99]), 0.95).numpy(), [0.6, 0.95])


def test_weighted_ce_divides_by_the_given_denominator():
    logits = torch.tensor([[[[0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]]])   # 3 pixels, p = (0.5, 0.5)
    target = torch.tensor([[[0, 1, -1]]])
    weight = torch.tensor([[[1.0, 0.5, 0.0]]])
    assert float(weighted_ce(logits, target, weight, 3)) == pytest.approx(1.5 * math.log(2) / 3)


# ------------------------------------------------------------------------------------------- views
def test_dihedral_and_its_inverse_cover_the_eight_symmetries():
    x = torch.arange(9.0).view(1, 3, 3)
    seen = set()
    for rot in range(4):
        for flip in (False, True):
            y = dihedral(x, rot, flip)
            seen.add(tuple(y.flatten().tolist()))
            assert torch.equal(undo_dihedral(y, rot, flip), x)
    assert len(seen) == 8
    # one quarter turn counter-clockwise: the top row (0, 1, 2) becomes the left column, 0 at the bottom
    assert dihedral(x, 1, False)[0].tolist() == [[2.0, 5.0, 8.0], [1.0, 4.0, 7.0], [0.0, 3.0, 6.0]]


def test_cutmix_boxes_respect_area_and_probability():
    torch.manual_seed(1)
    cfg = ViewConfig(cutmix_prob=1.0)
    boxes = cutmix_boxes(64, 40, 40, cfg)
    share = boxes.float().mean(dim=(1, 2))
    assert torch.all(share > 0.01) and torch.all(share < 0.45)
    assert not cutmix_boxes(8, 40, 40, ViewConfig(cutmix_prob=0.0)).any()


def test_photometric_noise_keeps_invalid_pixels_at_zero():
    torch.manual_seed(2)
    x = torch.randn(4, 3, 16, 16)
    valid = torch.rand(4, 16, 16) > 0.3
    cfg = ViewConfig(jitter_prob=1.0, blur_prob=1.0)
    y = photometric(x * valid[:, None], valid, cfg)
    assert torch.all(y[~valid[:, None].expand_as(y)] == 0)
    assert not torch.allclose(y, x * valid[:, None])


def test_feature_dropout_zeroes_whole_channels_and_rescales_the_rest():
    features = [torch.ones(2, 3, 4, 4), torch.ones(64, 50, 3, 3)]
    out = feature_dropout(features, 0.25, draws(0, "test"))
    assert out[0] is features[0]
    per_channel = out[1].flatten(2)
    assert torch.all(per_channel == per_channel[..., :1])            # a channel is dropped whole or kept whole
    assert per_channel.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert abs(float((per_channel[..., 0] == 0).float().mean()) - 0.25) < 0.02
    assert torch.equal(feature_dropout(features, 0.0)[1], features[1])


def test_strong_views_are_a_function_of_their_generator():
    """The same generator state gives the same photometric noise, CutMix boxes and feature dropout."""
    from geossl.ssl.fixmatch import FixMatch, FixMatchConfig

    model = Segmenter(ModelConfig(encoder="tu-test_resnet", in_channels=3, num_classes=2,
                                  decoder_channels=[16, 8, 8, 8, 8]))
    strategy = FixMatch(model, FixMatchConfig(), ViewConfig(jitter_prob=1.0, blur_prob=0.5, cutmix_prob=0.7))
    x = torch.randn(6, 3, 32, 32)
    valid = torch.ones(6, 32, 32, dtype=torch.bool)
    features = model.features(x)

    def draw(seed: int) -> tuple:
        g = draws(seed, "step", 0, 7)
        view = strategy.strong_view(x, valid, g)
        _, (dropped,) = strategy.decode_with_dropout(features, 2, (0.5,), g)
        return view.image, view.box, view.source, dropped

    torch.manual_seed(0)
    a = draw(1)
    torch.manual_seed(1)                       # torch's global generator plays no part
    b = draw(1)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    c = draw(2)
    assert not torch.equal(a[0], c[0]) and not torch.equal(a[3], c[3])


# ------------------------------------------------------------------------------------------- teacher de-biasing
def test_pseudo_labels_remove_the_class_weights_bias():
    from geossl.ssl.fixmatch import FixMatch, FixMatchConfig

    model = Segmenter(ModelConfig(encoder="tu-test_resnet", in_channels=2, num_classes=2,
                                  decoder_channels=[16, 8, 8, 8, 8]))
    logits = torch.zeros(1, 2, 1, 1)  # a weighted model undecided between the classes...
    weights = torch.tensor([1.0, 4.0])  # ...trained with class 1 weighted 4x: p(c|x) ∝ p_model / w
    probs, conf, labels = FixMatch(model, FixMatchConfig(), class_weights=weights,
                                   debias_pseudo_labels=True).pseudo_labels(logits)
    assert torch.allclose(probs[0, :, 0, 0], torch.tensor([0.8, 0.2]))
    assert labels.item() == 0 and conf.item() == pytest.approx(0.8)
    probs, _, _ = FixMatch(model, FixMatchConfig(), class_weights=weights).pseudo_labels(logits)  # default: off
    assert torch.allclose(probs[0, :, 0, 0], torch.tensor([0.5, 0.5]))
    probs, _, _ = FixMatch(model, FixMatchConfig(), debias_pseudo_labels=True).pseudo_labels(logits)  # no weights
    assert torch.allclose(probs[0, :, 0, 0], torch.tensor([0.5, 0.5]))
