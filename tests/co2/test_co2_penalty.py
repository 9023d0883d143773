"""Deriving the staleness-gap penalty: the ρ estimator against the quadratic it is built on."""

from __future__ import annotations

import pytest
import torch

from companion.co2 import stability
from companion.co2.outer import OuterConfig
from companion.co2.schedule import Schedule
from companion.co2.sync import OuterSync, SoloNet
from companion.co2.worker import RunSpec


def _sync_rounds_on_quadratic(curvature: float, inner_lr: float, tau: int, rounds: int,
                              outer_lr: float = 1.0) -> OuterSync:
    """Synchronous local SGD (one worker) on ``0.5 h |x|^2`` with plain SGD inner steps."""
    model = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0]]))
    sync = OuterSync(model, SoloNet(), 1, Schedule.local_sgd(tau, OuterConfig(outer_lr=outer_lr)),
                     track_progress=True)
    opt = torch.optim.SGD(model.parameters(), lr=inner_lr)
    for _ in range(rounds):
        for _ in range(tau):
            opt.zero_grad()
            (0.5 * curvature * model.weight.pow(2).sum()).backward()
            opt.step()
        sync.end_round(model)
    return sync


@pytest.mark.parametrize("outer_lr", [1.0, 0.7])
def test_estimate_recovers_the_local_progress_of_a_quadratic(outer_lr):
    h, gamma, tau = 2.0, 0.05, 8
    sync = _sync_rounds_on_quadratic(h, gamma, tau, rounds=6, outer_lr=outer_lr)
    assert len(sync.delta_products) == 5
    rho_hat = stability.estimate_local_progress(sync.delta_products, outer_lr=outer_lr)
    assert rho_hat == pytest.approx(stability.local_progress(h, gamma, tau), rel=1e-4)


def test_two_curvatures_give_a_weighted_average_between_them():
    # pairs from two directions with ratios 1 - rho_1 and 1 - rho_2: the estimate lies between
    pairs = [(0.5 * 1.0, 1.0), (0.1 * 4.0, 4.0)]  # r = 0.5 and r = 0.1 -> rho 0.5 and 0.9
    rho = stability.estimate_local_progress(pairs, skip=0)
    assert 0.5 < rho < 0.9


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        stability.estimate_local_progress([(1.0, 1.0)])
    with pytest.raises(ValueError, match="zero norm"):
        stability.estimate_local_progress([(0.0, 0.0), (0.0, 0.0)], skip=0)
    with pytest.raises(ValueError, match="outer_lr"):
        stability.estimate_local_progress([(1.0, 1.0)], skip=0, outer_lr=0.0)
    with pytest.raises(ValueError, match="data-parallel has none"):
        RunSpec(Schedule.data_parallel(), 8, track_progress=True)


def test_untracked_sync_keeps_no_products():
    model = torch.nn.Linear(2, 1, bias=False)
    sync = OuterSync(model, SoloNet(), 1, Schedule.local_sgd(1, OuterConfig()))
    for _ in range(3):
        sync.end_round(model)
    assert sync.delta_products == [] and sync._prev_delta is None
