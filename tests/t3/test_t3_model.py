"""The closed forms, the event model, the DRAM count and the paper-scale table."""

import math

import pytest

from companion.comm import Link
from companion.t3 import (
    PAPER_GPU,
    PAPER_RING,
    count_dram_traffic,
    evaluate_sublayer,
    geomean,
    ideal_overlap_time,
    make_layout,
    paper_scale_table,
    pipelined_time,
    sequential_time,
    simulate_schedule,
    speedup_ceiling,
    sublayers,
    trace_spans,
)
from companion.t3.paper_scale import PAPER_MODELS, PAPER_TP_DEGREES


def test_sequential_is_the_sum():
    assert sequential_time(3.0, 2.0) == 5.0
    with pytest.raises(ValueError, match="gemm_s"):
        sequential_time(-1.0, 2.0)


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("g, x", [(1.0, 0.4), (1.0, 1.0), (1.0, 3.0)])
def test_event_model_matches_closed_form(p, g, x):
    # one chunk per ring step, no contention: g + (p-1) max(g, x)
    trace = simulate_schedule(make_layout("fine", p, 1), [g] * p, x)
    assert trace.total_s == pytest.approx(pipelined_time(g, x, p))


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("g, x", [(1.0, 0.4), (1.0, 1.0), (1.0, 1.6), (1.0, 3.0)])
@pytest.mark.parametrize("c", [0.5, 1.0])
def test_both_contention_quantities_match_the_event_model(p, g, x, c):
    layout = make_layout("fine", p, 1)
    # the book's c: the event model stretches each chunk by c times its overlap with sends
    stretched = simulate_schedule(layout, [g] * p, x, contention=c).total_s
    assert stretched == pytest.approx(pipelined_time(g, x, p, contention=c))
    # the paper's gamma_g: every chunk (1 + gamma_g) times longer = the event model on longer chunks
    slowed = simulate_schedule(layout, [(1 + c) * g] * p, x).total_s
    assert slowed == pytest.approx(pipelined_time(g, x, p, gemm_slowdown=c))


def test_the_two_contention_quantities_differ_at_the_issue_example():
    # p = 8, C_RS = G / 2 (G = 1): g = 1/8, x = 1/14, T_seq = 1.5.
    # gamma_g = 1: every chunk 1/4, T = 1/4 + 7 max(1/4, 1/14) = 2.0 -> 0.75x.
    # c = 1: chunk 0 runs alone (1/8), chunks 1..7 overlap one send of 1/14 each and last
    # 1/8 + 1/14; T = 1/8 + 7 (1/8 + 1/14) = 1.5 -> 1.00x.
    g, x = 1 / 8, 0.5 / 7
    assert sequential_time(1.0, 0.5) / pipelined_time(g, x, 8, gemm_slowdown=1.0) == pytest.approx(0.75)
    assert sequential_time(1.0, 0.5) / pipelined_time(g, x, 8, contention=1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="contention"):
        pipelined_time(g, x, 8, contention=-1.0)


def test_closed_form_limits():
    # communication hidden: GEMM time plus the exposed reduction
    assert pipelined_time(2.0, 1.0, 4, final_reduce_s=0.5) == pytest.approx(8.5)
    # communication bound: one chunk of GEMM, then every step
    assert pipelined_time(1.0, 2.0, 4) == pytest.approx(1.0 + 3 * 2.0)
    # the paper's slowdown lengthens every chunk: 1.5 + 1 x max(1.5, 1)
    assert pipelined_time(1.0, 1.0, 2, gemm_slowdown=0.5) == pytest.approx(3.0)
    # the book's contention stretches chunk 1 by 0.5 x its overlap (1) with send 0: 1 + 1.5
    assert pipelined_time(1.0, 1.0, 2, contention=0.5) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="world_size"):
        pipelined_time(1.0, 1.0, 0)


@pytest.mark.parametrize("p", [2, 4, 16])
def test_ceiling_is_reached_at_x_equal_g_and_never_beaten(p):
    G = 1.0
    best = 0.0
    for ratio in [0.1 * i for i in range(1, 40)] + [(p - 1) / p]:
        C = ratio * G
        best = max(best, sequential_time(G, C) / ideal_overlap_time(G, C, p))
    assert best == pytest.approx(speedup_ceiling(p))
    assert speedup_ceiling(p) < 2.0
    assert speedup_ceiling(1) == 1.0


def test_sequential_event_model_adds_a_reduction_per_step():
    trace = simulate_schedule(make_layout("sequential", 4), [4.0], 1.0, reduce_s=0.1)
    assert trace.total_s == pytest.approx(4.0 + 3 * 1.1)


def test_contention_stretches_overlapped_gemm_only():
    layout = make_layout("fine", 2, 1)
    free = simulate_schedule(layout, [1.0, 1.0], 2.0).total_s
    contended = simulate_schedule(layout, [1.0, 1.0], 2.0, contention=0.5).total_s
    # chunk 1 overlaps the send of chunk 0 for its whole second: stretched to 1.5, still < 1 + 2
    assert free == contended == pytest.approx(3.0)
    hidden = simulate_schedule(layout, [1.0, 1.0], 1.0, contention=0.5).total_s
    assert hidden == pytest.approx(1.0 + 1.5)


def test_coarse_overlap_sits_between_sequential_and_fine():
    p, G, step = 4, 8.0, 2.0
    seq = simulate_schedule(make_layout("sequential", p), [G], step).total_s
    coarse = simulate_schedule(make_layout("coarse", p, 2), [G / 2] * 2, step / 2).total_s
    fine = simulate_schedule(make_layout("fine", p, 1), [G / p] * p, step).total_s
    assert fine < coarse < seq


def test_event_model_rejects_bad_input():
    with pytest.raises(ValueError, match="one per GEMM group"):
        simulate_schedule(make_layout("fine", 2, 1), [1.0], 1.0)
    with pytest.raises(ValueError, match="contention"):
        simulate_schedule(make_layout("fine", 2, 1), [1.0, 1.0], 1.0, contention=-1)


def test_trace_spans_cover_every_rank():
    spans = trace_spans(simulate_schedule(make_layout("fine", 4, 1), [1.0] * 4, 1.0))
    assert {s.rank for s in spans} == {0, 1, 2, 3}
    # rank 1 sends block 0 first, rank 0 sends block 3 first: the staggered order
    first = {r: min((s for s in spans if s.rank == r and s.kind == "comm"), key=lambda s: s.start_s).name for r in (0, 1)}
    assert first == {0: "send block 3.0", 1: "send block 0.0"}


def test_dram_traffic_near_memory_saves_reduce_scatter_bytes():
    base = count_dram_traffic(1024, 256, 512, 8)
    nmc = count_dram_traffic(1024, 256, 512, 8, near_memory_reduce=True)
    S = 2 * 1024 * 512
    # baseline: 7 sends read S/8 each, 7 receives write S/8, read 2 S/8, write S/8
    assert base.rs_read == pytest.approx(7 * 3 * S / 8)
    assert base.rs_write == pytest.approx(7 * 2 * S / 8)
    assert nmc.rs_read == pytest.approx(7 * S / 8) and nmc.rs_write == pytest.approx(7 * S / 8)
    assert nmc.gemm_read == base.gemm_read and nmc.ag_write == base.ag_write
    assert nmc.total < base.total
    with pytest.raises(ValueError, match="world_size"):
        count_dram_traffic(8, 8, 8, 0)


def test_gemm_roofline_and_link_constants():
    assert PAPER_GPU.peak_flops == pytest.approx(80 * 1.4e9 * 1024)
    # a tiny GEMM is bound by DRAM, a large one by compute
    assert PAPER_GPU.gemm_time(1, 1, 4096) == pytest.approx(2 * (1 + 4096 + 4096) / 1e12)
    assert PAPER_GPU.gemm_time(4096, 4096, 4096) == pytest.approx(2 * 4096**3 / (0.75 * PAPER_GPU.peak_flops))
    assert PAPER_RING.reduce_scatter_time(8e6, 8) == pytest.approx(7 * (500e-9 + 1e6 / 75e9))


def test_sublayers_shapes_and_validation():
    tnlg = PAPER_MODELS[0]
    subs = sublayers(tnlg, 8, 2048)
    assert [s.name for s in subs] == ["OP fwd", "FC-2 fwd", "FC-1 bwd", "IP bwd"]
    assert [s.k for s in subs] == [532, 2128, 2128, 1596]
    palm = PAPER_MODELS[2]
    assert sublayers(palm, 32, 16)[2].k == 2 * 4 * 18432 // 32  # gated FFN
    with pytest.raises(ValueError, match="must divide"):
        sublayers(tnlg, 3, 2048)


def test_paper_table_orders_the_schedules():
    rows = paper_scale_table()
    assert len(rows) == 4 * sum(len(tps) for tps in PAPER_TP_DEGREES.values()) == 4 * 7
    for r in rows:
        assert 1.0 < r.software_speedup <= r.t3_speedup <= r.ideal_speedup + 1e-12
        assert r.ideal_speedup < speedup_ceiling(r.sublayer.tp) + 1e-12
        assert 0 < r.traffic_reduction < 1


def test_comm_ratio_does_not_depend_on_tokens_once_latency_is_small():
    sub = sublayers(PAPER_MODELS[1], 32, 2048)[0]
    big = sublayers(PAPER_MODELS[1], 32, 8192)[0]
    assert evaluate_sublayer(sub).comm_ratio == pytest.approx(evaluate_sublayer(big).comm_ratio, rel=0.02)


def test_geomean():
    assert geomean([1.0, 4.0]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        geomean([])
    assert math.isclose(geomean([3.0]), 3.0)


def test_custom_link_changes_the_table():
    slow = Link(latency_s=500e-9, bandwidth_bytes_per_s=25e9)
    sub = sublayers(PAPER_MODELS[0], 8, 2048)[1]
    assert evaluate_sublayer(sub, link=slow).comm_ratio > evaluate_sublayer(sub).comm_ratio


def test_ring_model_a_slow_rank_delays_its_right_neighbour():
    from companion.t3.schedule_model import simulate_ring

    layout = make_layout("fine", 2, 1)
    # rank 0's first chunk takes 3 s instead of 1: its send (1 s) reaches rank 1 at 4 s, where
    # the 0.5 s addition completes rank 1's block at 4.5 s although rank 1's GEMM ended at 2 s;
    # rank 0 gets rank 1's partial at 2 s and completes at 4 + 0.5
    trace = simulate_ring(layout, [[3.0, 1.0], [1.0, 1.0]], 1.0, reduce_s=0.5)
    assert trace.total_s == pytest.approx(4.5)
    reduces = {e[0]: (e[3], e[4]) for e in trace.events if e[1] == "reduce"}
    assert reduces == {0: (pytest.approx(4.0), pytest.approx(4.5)), 1: (pytest.approx(4.0), pytest.approx(4.5))}


def test_ring_model_charges_issue_and_wake_overheads():
    from companion.t3.schedule_model import simulate_ring

    layout = make_layout("fine", 2, 1)
    # g = 1, x = 2: send issued at 1 + 0.5, done at 3.5, acted on 0.25 later
    trace = simulate_ring(layout, [[1.0, 1.0]] * 2, 2.0, issue_s=[0.5, 0.5], wake_s=[0.25, 0.25])
    assert trace.total_s == pytest.approx(3.75)
    with pytest.raises(ValueError, match="one entry per rank"):
        simulate_ring(layout, [[1.0, 1.0]], 2.0)
    with pytest.raises(ValueError, match="wake_s"):
        simulate_ring(layout, [[1.0, 1.0]] * 2, 2.0, wake_s=[-1.0, 0.0])
