"""The full-overlap condition, predicted utilisation, the quadratic stability model, the paper."""

import math

import numpy as np
import pytest

from companion.co2.overlap import (allreduce_seconds, full_overlap, min_local_steps,
                                   predicted_utilization)
from companion.co2.paper import (calibrate_ring, paper_value, predict_paper_scalability,
                                 ring_factor)
from companion.co2.stability import (best_gap_penalty, contraction_factor, local_progress,
                                     outer_iteration_matrix, stale_contraction_closed_form)


def test_allreduce_seconds_matches_the_condition():
    # 1e6 params × 4 B, 1e8 B/s, 2 ms: 2·4e6/1e8 + 2e-3 = 0.082 s
    assert allreduce_seconds(1_000_000, bytes_per_param=4, bandwidth_bytes_per_s=1e8,
                             latency_s=2e-3) == pytest.approx(0.082)
    # two workers: ring factor 2·1/2 = 1
    assert allreduce_seconds(1_000_000, bytes_per_param=4, bandwidth_bytes_per_s=1e8,
                             world_size=2) == pytest.approx(0.04)


def test_full_overlap_boundary_and_min_local_steps():
    assert full_overlap(0.08, local_steps=8, step_s=0.01)
    assert not full_overlap(0.081, local_steps=8, step_s=0.01)
    assert min_local_steps(0.081, step_s=0.01) == 9
    assert min_local_steps(0.08, step_s=0.01) == 8
    assert min_local_steps(0.0, step_s=0.01) == 1
    tau = min_local_steps(0.37, step_s=0.013)
    assert full_overlap(0.37, local_steps=tau, step_s=0.013)
    assert not full_overlap(0.37, local_steps=tau - 1, step_s=0.013)


def test_predicted_utilization():
    assert predicted_utilization("data_parallel", comm_s=3.0, step_s=1.0) == pytest.approx(0.25)
    assert predicted_utilization("local_sgd", comm_s=3.0, step_s=1.0,
                                 local_steps=3) == pytest.approx(0.5)
    assert predicted_utilization("co2", comm_s=3.0, step_s=1.0, local_steps=3) == 1.0
    assert predicted_utilization("co2", comm_s=6.0, step_s=1.0,
                                 local_steps=3) == pytest.approx(0.5)


@pytest.mark.parametrize("call, match", [
    (lambda: full_overlap(1.0, local_steps=0, step_s=1.0), "local_steps"),
    (lambda: full_overlap(1.0, local_steps=2.5, step_s=1.0), "local_steps"),
    (lambda: full_overlap(-1.0, local_steps=2, step_s=1.0), "comm_s"),
    (lambda: min_local_steps(1.0, step_s=0.0), "step_s"),
    (lambda: predicted_utilization("gossip", comm_s=1.0, step_s=1.0), "method"),
    (lambda: allreduce_seconds(10, bytes_per_param=4, bandwidth_bytes_per_s=0), "bandwidth"),
    (lambda: allreduce_seconds(10, bytes_per_param=4, bandwidth_bytes_per_s=1,
                               latency_s=-1), "latency"),
    (lambda: allreduce_seconds(10, bytes_per_param=4, bandwidth_bytes_per_s=1,
                               world_size=0), "world_size"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_local_progress():
    assert local_progress(1.0, 0.5, 1) == pytest.approx(0.5)
    assert local_progress(1.0, 0.5, 3) == pytest.approx(1 - 0.125)
    with pytest.raises(ValueError, match="local_steps"):
        local_progress(1.0, 0.5, 0)


@pytest.mark.parametrize("c", [0.05, 0.25, 0.5, 0.99, 1.5])
def test_stale_radius_matches_closed_form(c):
    assert contraction_factor(c, stale=True) == pytest.approx(stale_contraction_closed_form(c))


def test_staleness_costs_and_the_penalty_restores_stability():
    rho = 0.95
    assert contraction_factor(rho, stale=False) == pytest.approx(0.05)
    assert contraction_factor(rho, stale=True) > 0.9  # close to the edge without penalty
    lam = best_gap_penalty(rho)
    assert contraction_factor(rho, stale=True, gap_penalty=lam) == pytest.approx(0.5)
    # momentum on a stale update without penalty diverges; the penalty brings it back
    assert contraction_factor(rho, stale=True, outer_momentum=0.5) > 1.0
    assert contraction_factor(rho, stale=True, outer_momentum=0.5, gap_penalty=4.0) < 1.0


def test_matrix_shapes_and_validation():
    assert outer_iteration_matrix(0.5, stale=True).shape == (3, 3)
    assert outer_iteration_matrix(0.5, stale=False).shape == (2, 2)
    with pytest.raises(ValueError, match="gap_penalty"):
        outer_iteration_matrix(0.5, gap_penalty=0.5)
    with pytest.raises(ValueError, match="rho"):
        outer_iteration_matrix(0.0)


def test_paper_calibration_reproduces_data_parallel():
    x, y = calibrate_ring()
    c128 = 2 * 127 * y + ring_factor(128) * x
    c16 = 2 * 15 * y + ring_factor(16) * x
    assert c128 == pytest.approx(304_736 / 22_810 - 1)  # the throughput gap
    assert (1 + c16) / (1 + c128) == pytest.approx(0.82)  # data-parallel's ratio
    assert x > 0 and y > 0


def test_paper_prediction():
    pred = predict_paper_scalability((12, 48))
    assert pred.dp_ratio == pytest.approx(0.82)
    assert pred.co2_ratio[48] == pytest.approx(1.0)  # hidden at both scales
    assert pred.co2_ratio[12] < 1.0  # 12 < c_128/T: exposed at 128 GPUs
    assert pred.min_local_steps == math.ceil(pred.comm_over_step[128])
    doubled = predict_paper_scalability((12,), payload_ratio=2.0)
    assert doubled.co2_ratio[12] < pred.co2_ratio[12]
    assert doubled.min_local_steps > pred.min_local_steps
    assert ring_factor(2) == 1.0
    with pytest.raises(ValueError, match="unknown paper constant"):
        paper_value("gpus")
    with pytest.raises(ValueError, match="payload_ratio"):
        predict_paper_scalability(payload_ratio=0.0)
    with pytest.raises(ValueError, match="world_size"):
        ring_factor(0)
    assert np.isfinite(pred.dp_ratio)
