"""The prior as a second teacher: its schedule and targets, with hand values."""

import pytest
import torch

from geossl.data.normalize import IGNORE
from geossl.ssl.prior import PriorSchedule, prior_targets

N = IGNORE


def test_beta_decays_linearly_to_zero_at_t_end_and_stays_there():
    s = PriorSchedule(beta0=0.8, t_end=0.5)
    assert [s.beta(t) for t in (0.0, 0.25, 0.5, 0.75, 1.0)] == pytest.approx([0.8, 0.4, 0.0, 0.0, 0.0])


def test_bad_schedule_is_refused():
    with pytest.raises(ValueError):
        PriorSchedule(t_end=0)


def test_targets_and_weights_by_hand():
    s = PriorSchedule(beta0=0.5, t_end=0.5, threshold=0.9)
    # pixels: confident & prior disagrees | unsure & prior | unsure & no prior | confident & no prior |
    #         unsure & prior but truly labeled | confident but truly labeled
    conf = torch.tensor([[[0.95, 0.6, 0.5, 0.99, 0.4, 0.97]]])
    labels = torch.tensor([[[2, 1, 0, 3, 1, 2]]])
    prior = torch.tensor([[[1, 3, N, N, 2, 0]]])
    truth = torch.tensor([[[N, N, N, N, 4, 2]]])
    target, weight = prior_targets(conf, labels, prior, truth, t=0.25, schedule=s)
    assert target.tolist() == [[[2, 3, N, 3, N, N]]]
    assert weight.flatten().tolist() == pytest.approx([1.0, 0.25, 0.0, 1.0, 0.0, 0.0])
    # after t_end the prior no longer teaches; the model's confident labels still do
    target, weight = prior_targets(conf, labels, prior, truth, t=0.6, schedule=s)
    assert target.tolist() == [[[2, N, N, 3, N, N]]]
    assert weight.flatten().tolist() == pytest.approx([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
