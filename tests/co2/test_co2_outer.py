"""The outer update: signs, penalty, the clip that clips and the one that does not."""

import pytest
import torch

from companion.co2.outer import (OuterConfig, clip_outer_momentum_, momentum_update_,
                                 outer_step_, pseudo_gradient, reference_code_clip)


def test_pseudo_gradient_is_old_minus_new():
    anchor, average = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 3.0])
    assert torch.equal(pseudo_gradient(anchor, average), torch.tensor([0.5, -1.0]))


def test_plain_outer_step_is_parameter_averaging():
    # α = 1, β = 0, no clip: a − (a − x̄) = x̄ exactly
    anchor, average = torch.tensor([1.0, -2.0, 3.0]), torch.tensor([0.25, 0.5, 4.0])
    m = torch.zeros(3)
    out = outer_step_(anchor.clone(), m, pseudo_gradient(anchor, average),
                      config=OuterConfig(), stale=False)
    torch.testing.assert_close(out, average)


def test_momentum_and_penalty_by_hand():
    # m = 0.5·[2, −2] + [4, 8]/2 = [3, 3]; a = [10, 10] − 0.5·[3, 3] = [8.5, 8.5]
    cfg = OuterConfig(outer_lr=0.5, outer_momentum=0.5, gap_penalty=2.0)
    anchor, m = torch.tensor([10.0, 10.0]), torch.tensor([2.0, -2.0])
    outer_step_(anchor, m, torch.tensor([4.0, 8.0]), config=cfg, stale=True)
    torch.testing.assert_close(m, torch.tensor([3.0, 3.0]))
    torch.testing.assert_close(anchor, torch.tensor([8.5, 8.5]))


def test_penalty_is_not_applied_without_staleness():
    cfg = OuterConfig(gap_penalty=4.0)
    m = torch.zeros(1)
    outer_step_(torch.zeros(1), m, torch.tensor([8.0]), config=cfg, stale=False)
    assert m.item() == 8.0


def test_momentum_update_in_place():
    m = torch.tensor([1.0])
    out = momentum_update_(m, torch.tensor([3.0]), outer_momentum=0.5, gap_penalty=3.0)
    assert out is m and m.item() == pytest.approx(1.5)


def test_our_clip_bounds_every_entry_in_place():
    m = torch.tensor([-5.0, 0.3, 2.0])
    out = clip_outer_momentum_(m, 1.0)
    assert out is m
    assert torch.equal(m, torch.tensor([-1.0, 0.3, 1.0]))


def test_reference_code_clip_never_takes_effect():
    # the public CO2 code calls the out-of-place torch.clamp and drops the result
    m = torch.tensor([-5.0, 0.3, 2.0])
    before = m.clone()
    assert reference_code_clip(m, 1.0) is None
    assert torch.equal(m, before)
    assert m.abs().max().item() > 1.0  # still outside [−φ, φ]


def test_clipped_outer_step_moves_anchor_at_most_lr_times_threshold():
    cfg = OuterConfig(outer_lr=0.7, outer_momentum=0.9, clip_threshold=0.1)
    anchor, m = torch.zeros(4), torch.zeros(4)
    for _ in range(5):
        before = anchor.clone()
        outer_step_(anchor, m, torch.tensor([100.0, -100.0, 0.01, 3.0]), config=cfg, stale=True)
        assert (anchor - before).abs().max().item() <= 0.7 * 0.1 + 1e-7


def test_clip_none_is_identity():
    m = torch.tensor([7.0])
    assert clip_outer_momentum_(m, None).item() == 7.0


@pytest.mark.parametrize("kwargs, match", [
    ({"gap_penalty": 0.5}, "gap_penalty"),
    ({"gap_penalty": float("inf")}, "gap_penalty"),
    ({"clip_threshold": -1.0}, "clip_threshold"),
    ({"clip_threshold": 0.0}, "clip_threshold"),
    ({"outer_momentum": 1.0}, "outer_momentum"),
    ({"outer_momentum": -0.1}, "outer_momentum"),
    ({"outer_lr": 0.0}, "outer_lr"),
])
def test_bad_config_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OuterConfig(**kwargs)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="clip_threshold"):
        clip_outer_momentum_(torch.zeros(2), -0.5)
    with pytest.raises(ValueError, match="gap_penalty"):
        momentum_update_(torch.zeros(1), torch.zeros(1), outer_momentum=0.0, gap_penalty=0.9)
    with pytest.raises(ValueError, match="shape"):
        pseudo_gradient(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="shapes differ"):
        outer_step_(torch.zeros(2), torch.zeros(2), torch.zeros(3), config=OuterConfig(),
                    stale=True)
