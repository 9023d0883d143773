"""The full-overlap condition, predicted utilisation, the quadratic stability model, the paper."""

import math

import numpy as np
import pytest

from companion.co2.overlap import (allreduce_seconds, full_overlap, min_local_steps,
                                   predicted_utilization, simulate_rounds, simulated_utilization)
from companion.co2.paper import (calibrate_ring, paper_value, predict_paper_scalability,
                                 ring_factor)
from companion.co2.stability import (best_gap_penalty, contraction_factor, local_progress,
                                     outer_iteration_matrix, stale_contraction_closed_form)


def test_allreduce_seconds_matches_the_condition():
    # 1e6 params × 4 B, 1e8 B/s, many workers: 2·4e6/1e8 = 0.08 s
    assert allreduce_seconds(1_000_000, bytes_per_param=4,
                             bandwidth_bytes_per_s=1e8) == pytest.approx(0.08)
    # two workers: ring factor 2·1/2 = 1
    assert allreduce_seconds(1_000_000, bytes_per_param=4, bandwidth_bytes_per_s=1e8,
                             world_size=2) == pytest.approx(0.04)
    # latency is paid once per ring step, 2·(p−1) times: p = 4, 2 ms: 6·(2e-3 + 4e6/(4·1e8))
    assert allreduce_seconds(1_000_000, bytes_per_param=4, bandwidth_bytes_per_s=1e8,
                             latency_s=2e-3, world_size=4) == pytest.approx(6 * (2e-3 + 0.01))
    with pytest.raises(ValueError, match="needs a world_size"):
        allreduce_seconds(1_000_000, bytes_per_param=4, bandwidth_bytes_per_s=1e8, latency_s=2e-3)


@pytest.mark.parametrize("method", ["data_parallel", "local_sgd", "co2"])
@pytest.mark.parametrize("comm_s", [0.0, 0.3, 0.9, 2.0, 5.0, 12.0])
@pytest.mark.parametrize("bucketed", [True, False])
def test_event_model_steady_state_is_the_closed_form(method, comm_s, bucketed):
    kw = dict(comm_s=comm_s, step_s=1.0, local_steps=4, bucketed=bucketed)
    assert simulated_utilization(method, **kw) == pytest.approx(predicted_utilization(method, **kw))


def test_co2_round_waits_for_the_reduction_of_the_round_before():
    # τT = 2 s, c = 3 s: all-reduces queue back to back on the link, AR_t on [2 + 3t, 5 + 3t];
    # round t + 1 waits for AR_{t-1}, so from round 2 on a round starts every 3 s.
    run = simulate_rounds("co2", comm_s=3.0, step_s=1.0, local_steps=2, n_rounds=5)
    starts = [s for op, s in zip(run.ops, run.start_s) if op.name.startswith("round")]
    assert starts == pytest.approx([0.0, 2.0, 5.0, 8.0, 11.0])
    with pytest.raises(ValueError, match="n_rounds"):
        simulate_rounds("co2", comm_s=3.0, step_s=1.0, n_rounds=2)


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
    # bucketed data-parallel hides 2/3 of a 1 s step: 1 / (1 + 3 - 2/3) = 0.3; unbucketed 1/4
    assert predicted_utilization("data_parallel", comm_s=3.0, step_s=1.0) == pytest.approx(0.3)
    assert predicted_utilization("data_parallel", comm_s=3.0, step_s=1.0,
                                 bucketed=False) == pytest.approx(0.25)
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
    # data-parallel exposes c - 2/3 steps per step (it hides behind the backward pass)
    e128, e16 = c128 - 2 / 3, c16 - 2 / 3
    assert e128 == pytest.approx(304_736 / 22_810 - 1)  # the throughput gap
    assert (1 + e16) / (1 + e128) == pytest.approx(0.82)  # data-parallel's ratio
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


def test_timelines_cover_the_same_compute_and_hide_as_predicted():
    from companion.co2.overlap import METHODS, predicted_utilization, timelines

    step_s, tau = 0.01, 4
    comm_s = 0.5 * tau * step_s  # hidden by CO2, exposed for sync local SGD
    lanes = timelines(comm_s=comm_s, step_s=step_s, local_steps=tau, horizon_steps=32)
    assert list(lanes) == list(METHODS)
    for m, spans in lanes.items():
        compute = sum(s.duration_s for s in spans if s.kind == "compute")
        assert compute == pytest.approx(32 * step_s)
    # sync local SGD waits for every all-reduce: its timeline ends one comm per round later
    end = {m: max(s.end_s for s in spans) for m, spans in lanes.items()}
    assert end["local_sgd"] == pytest.approx(32 * step_s + 8 * comm_s)
    assert predicted_utilization("co2", comm_s=comm_s, step_s=step_s, local_steps=tau) == 1.0
    with pytest.raises(ValueError, match="horizon_steps"):
        timelines(comm_s=comm_s, step_s=step_s, local_steps=tau, horizon_steps=2)
