"""The overlap model: schedules, the multi-rank simulation and the analysis of measured runs."""

import math

import pytest

from companion import comm
from companion.comm import overlap


def test_model_spans_reach_the_bounds():
    seq = comm.summarize(overlap.model_spans([0.04] * 3, 0.025, "sequential"))
    ovl = comm.summarize(overlap.model_spans([0.04] * 3, 0.025, "overlapped"))
    lo, hi = comm.overlap_bounds(0.12, 0.075)
    assert seq["wall_s"] == pytest.approx(hi) and seq["overlap_efficiency"] == 0.0
    assert ovl["wall_s"] == pytest.approx(lo) and ovl["overlap_efficiency"] == pytest.approx(1.0)
    comm_bound = comm.summarize(overlap.model_spans([0.01] * 3, 0.025, "overlapped"))
    assert comm_bound["wall_s"] == pytest.approx(0.075) and comm_bound["exposed_comm_s"] == pytest.approx(0.045)
    with pytest.raises(ValueError, match="mode"):
        overlap.model_spans([0.1], 0.1, "pipelined")
    with pytest.raises(ValueError, match="comm_s"):
        overlap.model_spans([0.1], -1.0, "sequential")


def test_simulate_one_rank_equals_model_spans():
    for mode in overlap.MODES:
        assert overlap.simulate([[0.03, 0.05]], 0.04, mode) == overlap.model_spans([0.03, 0.05], 0.04, mode)


def test_simulate_holds_a_fast_rank_back():
    # Rank 0 computes 0.1 s, rank 1 0.06 s, then both all-reduce (0.08 s). The all-reduce of a
    # step starts when the later rank (rank 0) issues it and completes on both ranks together,
    # so every step takes 0.1 + 0.08 = 0.18 s on both: 4 x 0.18 = 0.72 s for each rank. (The
    # old per-rank clock let rank 1 start its transfer early and end at 0.64 s.)
    spans = overlap.simulate([[0.1] * 4, [0.06] * 4], 0.08, "sequential")
    per_rank = comm.summarize(spans)["per_rank"]
    assert per_rank[0]["wall_s"] == pytest.approx(0.72)
    assert per_rank[1]["wall_s"] == pytest.approx(0.72)  # not 0.64, nor 4 x (0.06 + 0.08) = 0.56
    # rank 1 waits 0.04 s per step for rank 0 before the all-reduce starts
    starts = [s.start_s for s in spans if s.rank == 1 and s.kind == "comm"]
    assert starts == pytest.approx([0.1, 0.28, 0.46, 0.64])
    with pytest.raises(ValueError, match="same number of steps"):
        overlap.simulate([[0.1], [0.1, 0.1]], 0.08, "sequential")


def test_simulate_overlapped_waits_for_the_last_issue():
    # Overlapped: each rank issues step k's all-reduce, then computes beside it. Rank 1 spends
    # 0.05 s issuing, so the all-reduce starts at 0.05 and ends at 0.05 + 0.08 = 0.13 on both
    # ranks; rank 0's step ends then (compute 0.1 < 0.13), rank 1's at max(0.13, 0.05 + 0.1).
    spans = overlap.simulate([[0.1], [0.1]], 0.08, "overlapped", issue_s=[[0.0], [0.05]])
    per_rank = comm.summarize(spans)["per_rank"]
    assert per_rank[0]["wall_s"] == pytest.approx(0.13)
    assert per_rank[1]["wall_s"] == pytest.approx(0.15)


def test_simulate_stretches_overlapped_compute_under_contention():
    # c = 0.5: the 0.1 s step overlaps the 0.08 s all-reduce for 0.08 s, so it lasts
    # 0.1 + 0.5 x 0.08 = 0.14 s; sequential steps overlap nothing and keep 0.1 + 0.08.
    ovl = overlap.simulate([[0.1]], 0.08, "overlapped", contention=0.5)
    assert comm.summarize(ovl)["wall_s"] == pytest.approx(0.14)
    seq = overlap.simulate([[0.1]], 0.08, "sequential", contention=0.5)
    assert comm.summarize(seq)["wall_s"] == pytest.approx(0.18)


def _record(setting, mode, repeat, rank, compute, comm_, cpu=1.0):
    spans = []
    for k, (c, m) in enumerate(zip(compute, comm_)):
        spans.append(comm.Span(rank, f"step {k}", "compute", c[0], c[1]))
        if m is not None:
            spans.append(comm.Span(rank, f"all_reduce {k}", "comm", m[0], m[1]))
    return {"setting": setting, "mode": mode, "repeat": repeat, "spans": spans, "cpu_s": cpu}


def test_analyse_compares_measured_runs_with_the_model():
    settings = [overlap.OverlapSetting("slow", comm.Link(0.0, 1e6), 2_500)]  # 10 kB over 2 ranks: 10 ms
    m = settings[0].comm_s(2)
    assert m == pytest.approx(0.01)
    per_rank = []
    for rank in range(2):
        per_rank.append([
            _record(0, "compute_only", 0, rank, [(0.0, 0.02), (0.02, 0.04)], [None, None]),
            # sequential, 10 % slower than the model: 2 x (20 + 10) = 60 ms measured as 66 ms
            _record(0, "sequential", 0, rank, [(0.0, 0.02), (0.033, 0.053)], [(0.02, 0.033), (0.053, 0.066)]),
            # overlapped, exactly the model: 2 x max(20, 10) = 40 ms
            _record(0, "overlapped", 0, rank, [(0.0, 0.02), (0.02, 0.04)], [(0.0, 0.01), (0.02, 0.03)]),
        ])
    rows = {r["mode"]: r for r in overlap.analyse(per_rank, settings)}
    assert rows["sequential"]["model_wall_s"] == pytest.approx(0.06)
    assert rows["sequential"]["rel_error"] == pytest.approx(0.1)
    assert rows["overlapped"]["rel_error"] == pytest.approx(0.0, abs=1e-12)
    assert rows["overlapped"]["overlap_efficiency"] == pytest.approx(1.0)
    # saved 66 - 40 = 26 ms of min(compute 40 ms, comm 26 ms) = 26 ms
    assert rows["overlapped"]["saving_fraction"] == pytest.approx(1.0)
    assert math.isnan(rows["compute_only"]["overlap_efficiency"])
    table = overlap.markdown_table(list(rows.values()))
    assert table.count("\n") == 4 and "+10.0 %" in table


def test_default_settings_cover_three_links_and_bare_gloo():
    settings = overlap.default_settings()
    assert [s.link is None for s in settings] == [False, False, False, True]
    times = [s.comm_s(2) for s in settings[:3]]
    assert times == sorted(times) and math.isnan(settings[3].comm_s(2))


def test_simulate_counts_the_host_time_of_issuing():
    ovl = overlap.simulate([[0.03, 0.03]], 0.02, "overlapped", issue_s=[[0.005, 0.005]])
    assert comm.summarize(ovl)["wall_s"] == pytest.approx(2 * (0.005 + 0.03))
    seq = overlap.simulate([[0.03, 0.03]], 0.02, "sequential", issue_s=[[0.005, 0.005]])
    assert comm.summarize(seq)["wall_s"] == pytest.approx(2 * (0.03 + 0.005 + 0.02))
    assert overlap.issue_times(seq) == [[pytest.approx(0.005), pytest.approx(0.005)]]
    assert overlap.compute_times(seq) == [[pytest.approx(0.03), pytest.approx(0.03)]]
    with pytest.raises(ValueError, match="issue_s"):
        overlap.simulate([[0.03]], 0.02, "sequential", issue_s=[[0.1, 0.1]])
