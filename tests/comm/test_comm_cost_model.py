"""The alpha-beta formulas and the timeline arithmetic."""

import math

import matplotlib

matplotlib.use("Agg")
import pytest

from companion import comm


def test_link_formulas():
    link = comm.Link(latency_s=1e-3, bandwidth_bytes_per_s=1e8)
    n = 4e6
    assert link.p2p_time(n) == pytest.approx(1e-3 + 0.04)
    assert link.allreduce_time(n, 4) == pytest.approx(2 * 3 * (1e-3 + n / (4 * 1e8)))
    assert link.reduce_scatter_time(n, 4) == pytest.approx(3 * (1e-3 + 0.01))
    assert link.allgather_time(n, 4) == pytest.approx(link.reduce_scatter_time(n, 4))
    assert link.allreduce_time(n, 4) == pytest.approx(link.reduce_scatter_time(n, 4) + link.allgather_time(n, 4))
    assert link.broadcast_time(n, 8) == pytest.approx(3 * link.p2p_time(n))
    assert link.broadcast_time(n, 5) == pytest.approx(3 * link.p2p_time(n))
    for method in ("allreduce_time", "reduce_scatter_time", "allgather_time", "broadcast_time"):
        assert getattr(link, method)(n, 1) == 0.0
    # large p: the all-reduce bandwidth term tends to 2 n / beta
    assert comm.Link(0.0, 1e8).allreduce_time(n, 10_000) == pytest.approx(2 * n / 1e8, rel=1e-3)


def test_from_gbps():
    link = comm.Link.from_gbps(2e-3, 1.0)
    assert link.bandwidth_bytes_per_s == 1.25e8 and link.latency_s == 2e-3
    assert link.gbit_per_s == pytest.approx(1.0)


@pytest.mark.parametrize("lat,bw", [(1e-3, 0.0), (1e-3, -5.0), (-1e-3, 1e8), (math.nan, 1e8), (0.0, math.inf)])
def test_bad_link(lat, bw):
    with pytest.raises(ValueError):
        comm.Link(lat, bw)


def test_bad_sizes():
    link = comm.Link(0.0, 1e8)
    with pytest.raises(ValueError, match="nbytes"):
        link.p2p_time(-1)
    with pytest.raises(ValueError, match="world_size"):
        link.allreduce_time(10, 0)
    with pytest.raises(ValueError, match="gbit_per_s"):
        comm.Link.from_gbps(0.0, 0.0)


def test_broadcast_sends_cover_every_receiver():
    for p in range(1, 10):
        assert sum(comm.broadcast_sends(r, p) for r in range(p)) == p - 1


def test_overlap_bounds_and_critical_bandwidth():
    assert comm.overlap_bounds(3.0, 2.0) == (3.0, 5.0)
    beta = comm.critical_bandwidth(1e6, 2, compute_s=0.01, latency_s=1e-3)
    assert comm.Link(1e-3, beta).allreduce_time(1e6, 2) == pytest.approx(0.01)
    assert comm.critical_bandwidth(1e6, 2, compute_s=0.001, latency_s=1e-3) == math.inf


def _spans(rank, compute, comm_):
    return ([comm.Span(rank, "c", "compute", a, b) for a, b in compute]
            + [comm.Span(rank, "m", "comm", a, b) for a, b in comm_])


def test_summarize_counts_hidden_and_exposed_time():
    spans = _spans(0, [(0.0, 1.0), (1.0, 2.0)], [(0.5, 1.5), (1.8, 2.6)])
    s = comm.summarize(spans)
    assert s["compute_s"] == pytest.approx(2.0)
    assert s["comm_s"] == pytest.approx(1.8)
    assert s["hidden_comm_s"] == pytest.approx(1.0 + 0.2)
    assert s["exposed_comm_s"] == pytest.approx(0.6)
    assert s["overlap_efficiency"] == pytest.approx(1.2 / 1.8)
    assert s["wall_s"] == pytest.approx(2.6)


def test_summarize_reports_the_worst_rank():
    spans = _spans(0, [(0.0, 1.0)], [(0.0, 1.0)]) + _spans(1, [(0.0, 1.0)], [(1.0, 2.0)])
    s = comm.summarize(spans)
    assert s["worst_rank"] == 1 and s["wall_s"] == pytest.approx(2.0) and s["overlap_efficiency"] == 0.0
    assert s["per_rank"][0]["overlap_efficiency"] == pytest.approx(1.0)
    assert math.isnan(comm.summarize(_spans(0, [(0, 1)], []))["overlap_efficiency"])
    with pytest.raises(ValueError):
        comm.summarize([])


def test_timeline_records_relative_spans():
    tl = comm.Timeline(rank=3)
    with tl.span("work", kind="compute"):
        sum(range(1000))
    tl.record("net", "comm", tl.origin + 0.5, tl.origin + 0.75)
    spans = tl.spans
    assert spans[0].rank == 3 and spans[0].duration_s >= 0 and spans[0].start_s >= 0
    assert spans[1] == comm.Span(3, "net", "comm", 0.5, 0.75)
    with pytest.raises(ValueError, match="kind"):
        tl.record("x", "io", 0, 1)
    with pytest.raises(ValueError, match="end_s"):
        tl.record("x", "comm", 1, 0)
    tl.reset()
    assert tl.spans == []


def test_plot_gantt_draws_one_lane_per_rank():
    spans = _spans(0, [(0.0, 1.0)], [(0.5, 1.5)]) + _spans(1, [(0.0, 1.0)], [(0.5, 1.5)])
    ax = comm.plot_gantt(spans, title="t")
    assert len(ax.get_yticks()) == 4
    assert len(ax.collections) == 4
    matplotlib.pyplot.close(ax.figure)


def test_compute_utilization_and_its_inverse():
    assert comm.compute_utilization(1.0, 0.5, 0.5) == 1.0
    assert comm.compute_utilization(1.0, 1.5, 0.5) == pytest.approx(0.5)
    beta = comm.bandwidth_for_utilization(1e9, compute_s=0.1, hideable_s=0.05, utilization=0.8)
    assert comm.compute_utilization(0.1, 1e9 / beta, 0.05) == pytest.approx(0.8)
    with pytest.raises(ValueError, match="hideable_s"):
        comm.compute_utilization(1.0, 1.0, 2.0)
    with pytest.raises(ValueError, match="utilization"):
        comm.bandwidth_for_utilization(1e9, 0.1, 0.05, 0.0)


def test_one_data_parallel_utilization_model():
    # a 0.3 s step hides its all-reduce behind the backward pass, 2/3 x 0.3 = 0.2 s: a 0.5 s
    # all-reduce exposes 0.3 s, CU = 0.3 / 0.6 = 0.5; without bucketing 0.3 / 0.8
    assert comm.DATA_PARALLEL_HIDDEN_FRACTION == pytest.approx(2 / 3)
    assert comm.data_parallel_utilization(0.3, 0.5) == pytest.approx(0.5)
    assert comm.data_parallel_utilization(0.3, 0.5, bucketed=False) == pytest.approx(0.375)
    assert comm.data_parallel_utilization(0.3, 0.15) == 1.0
    with pytest.raises(ValueError, match="step_s"):
        comm.data_parallel_utilization(0.0, 0.5)
    # DiLoCo's and CO2's data-parallel utilisation are this one (same step, same all-reduce)
    from companion.co2.overlap import predicted_utilization
    from companion.diloco.utilization import utilization
    n_params, gbps, step_s = 1e9, 100.0, 0.1
    comm_s = 16 * n_params / (gbps * 1e9)  # DiLoCo's sync: b N bits over W bits/s
    expected = comm.data_parallel_utilization(step_s, comm_s)
    assert utilization("data_parallel", gbps, n_params, 24, step_s) == pytest.approx(expected)
    assert predicted_utilization("data_parallel", comm_s=comm_s, step_s=step_s) == pytest.approx(expected)
