"""The three schedules on real processes: same output as a plain all-reduce, model agreement."""

import pytest
import torch

from companion.t3.experiment import ExperimentSpec, ScheduleRun, link_for_ratio, run_experiment

RUNS = (ScheduleRun("sequential", 1, 1.0), ScheduleRun("coarse", 2, 1.0), ScheduleRun("fine", 1, 1.0),
        ScheduleRun("fine", 2, 1.0, contention=0.5))


@pytest.mark.parametrize("world_size, runs", [(2, RUNS), pytest.param(4, RUNS[::2], marks=pytest.mark.slow)])
def test_schedules_equal_sequential_and_reference(world_size, runs):
    spec = ExperimentSpec(m=64, k=96, n=32, runs=runs, repeats=1, latency_s=0.0, return_outputs=True)
    results = run_experiment(spec, world_size, timeout_s=90)
    sequential = results[0].outputs
    for res in results:
        assert res.max_abs_error < 1e-4  # against dist.all_reduce of the full partials
        for rank in range(world_size):
            torch.testing.assert_close(res.outputs[rank], sequential[rank])
        for rank in range(world_size):
            sends = [s for s in res.spans if s.kind == "comm" and s.rank == rank]
            assert len(sends) == (world_size - 1) * res.layout.chunks_per_block
        # calibration: one GEMM time per group and repeat, one overhead per rank, and a
        # prediction from them alone
        n_groups = len(res.layout.groups)
        assert [len(g) for g in res.calib_group_s] == [n_groups] * spec.repeats
        assert len(res.calib_issue_s) == len(res.calib_wake_s) == world_size
        assert res.calibrated_s > 0 and res.predict_calibrated(0).total_s == res.calibrated_s


def test_bad_input_is_refused_before_launch():
    with pytest.raises(ValueError, match="does not divide the output"):
        run_experiment(ExperimentSpec(m=30, k=8, n=8, runs=RUNS[:1]), 4)
    with pytest.raises(ValueError, match="chunks per block do not divide"):
        run_experiment(ExperimentSpec(m=12, k=8, n=8, runs=(ScheduleRun("fine", 4),)), 2)
    with pytest.raises(ValueError, match="world_size >= 2"):
        run_experiment(ExperimentSpec(m=8, k=8, n=8, runs=RUNS[:1]), 1)
    with pytest.raises(ValueError, match="comm_ratio"):
        ScheduleRun("fine", 1, comm_ratio=0.0)
    with pytest.raises(ValueError, match="calibration_runs"):
        run_experiment(ExperimentSpec(m=8, k=8, n=8, runs=RUNS[:1], calibration_runs=0), 2)
    with pytest.raises(ValueError, match="latency"):
        link_for_ratio(1e-3, 1000, 2, 0.5, latency_s=1e-3)


def test_link_for_ratio_gives_the_asked_reduce_scatter_time():
    link = link_for_ratio(0.02, 4_000_000, 4, 1.5, latency_s=1e-4)
    assert link.reduce_scatter_time(4_000_000, 4) == pytest.approx(0.03)


def test_forwarded_sends_count_sends_that_follow_the_same_chunks_addition():
    from companion.comm import Link, Span
    from companion.t3.measured import MeasuredRun

    spans = [
        Span(0, "send 3", "comm", 0.0, 1.0),  # the first send: nothing arrived yet
        Span(0, "reduce 2", "compute", 1.0, 1.5),
        Span(0, "send 2", "comm", 1.5, 2.5),  # carries the partial added just before
        Span(0, "reduce 1", "compute", 3.0, 3.5),
        Span(0, "send 1", "comm", 3.2, 4.0),  # began before its addition ended: not forwarded
        Span(1, "send 0", "comm", 0.0, 1.0),
    ]
    run = MeasuredRun(run=ScheduleRun("fine"), world_size=2, link=Link(0.0, 1e9), gemm_s=1.0,
                      out_bytes=16, group_s=(), issue_s=(), wake_s=(), reduce_s=0.0, measured_s=1.0,
                      totals_s=(1.0,), spans=spans, shown=0, max_abs_error=0.0, outputs=None)
    assert run.forwarded_sends() == {0: 1, 1: 0}
