"""The one event model: hand-derived cases (every expected value is derived in a comment)."""

import pytest

from companion.comm import LAST, Schedule


def test_two_stage_pipeline():
    # Compute chunks of 1 s feed transfers of 2 s on one link: transfer i starts at
    # max(end of compute i, end of transfer i-1): [1, 3], [3, 5], [5, 7]. Makespan 7 s,
    # the closed form c + (n - 1) max(c, m) + m = 1 + 2 x 2 + 2.
    s = Schedule(1)
    prev = ()
    sends = []
    for i in range(3):
        c = s.compute(0, 1.0, after=prev, name=f"c{i}")
        sends.append(s.collective([0], 2.0, after=[c], name=f"m{i}"))
        prev = (c,)
    run = s.run()
    assert [(run.start_s[i], run.end_s[i]) for i in sends] == [(1.0, 3.0), (3.0, 5.0), (5.0, 7.0)]
    assert run.makespan_s == 7.0


def test_collective_waits_for_the_last_participant():
    # Rank 0 issues at 3 s, rank 1 at 1 s; the collective (2 s) starts at 3 s and ends at
    # 5 s on both ranks; rank 1's next compute (1 s) runs [5, 6], not [3, 4].
    s = Schedule(2)
    a, b = s.compute(0, 3.0), s.compute(1, 1.0)
    ar = s.collective([0, 1], 2.0, after=[a, b])
    nxt = s.compute(1, 1.0, after=[ar])
    run = s.run()
    assert (run.start_s[ar], run.end_s[ar]) == (3.0, 5.0)
    assert (run.start_s[nxt], run.end_s[nxt]) == (5.0, 6.0)
    assert run.rank_end_s(0) == 5.0 and run.rank_end_s(1) == 6.0
    assert [sp.rank for sp in run.spans() if sp.kind == "comm"] == [0, 1]


def test_collective_waits_for_every_link():
    # Rank 1's link is busy with a 4 s send to rank 2 (which also occupies rank 2's incoming
    # link); a collective over ranks 0 and 1 issued at 0 must wait until 4 s, then lasts 1 s.
    s = Schedule(3)
    busy = s.send(1, 2, 4.0)
    ar = s.collective([0, 1], 1.0)
    run = s.run()
    assert (run.start_s[busy], run.end_s[busy]) == (0.0, 4.0)
    assert (run.start_s[ar], run.end_s[ar]) == (4.0, 5.0)


def test_p2p_ring_runs_in_parallel_when_full_duplex():
    # Four ranks each send 1 s to the right at once: every rank's outgoing and incoming
    # directions carry one message each, so all four run in [0, 1] (full duplex). With one
    # resource per rank (duplex=False, ModelledLink's single clock), first come first served:
    # 0->1 runs [0, 1]; 1->2 needs rank 1, [1, 2]; 2->3 queues behind 1->2 on rank 2, [2, 3];
    # 3->0 behind 2->3 on rank 3, [3, 4]: 4 s.
    for duplex, makespan in ((True, 1.0), (False, 4.0)):
        s = Schedule(4, duplex=duplex)
        for r in range(4):
            s.send(r, (r + 1) % 4, 1.0)
        assert s.run().makespan_s == makespan


def test_send_charges_the_receiver_unless_told_not_to():
    # Ranks 0 and 1 both send 1 s to rank 2. Charged, rank 2's incoming link serialises them:
    # [0, 1] then [1, 2]. Not charged (a raw irecv), both run in [0, 1].
    for charge, second in ((True, (1.0, 2.0)), (False, (0.0, 1.0))):
        s = Schedule(3)
        s.send(0, 2, 1.0, charge_receiver=charge)
        b = s.send(1, 2, 1.0, charge_receiver=charge)
        run = s.run()
        assert (run.start_s[b], run.end_s[b]) == second


def test_contention_stretches_by_the_actual_overlap():
    # c = 0.5. A 2 s compute starts at 0 beside a 1 s transfer that starts at 0.5 (after a
    # 0.5 s issue on another thread): overlap = 1 s, so it lasts 2 + 0.5 x 1 = 2.5 s. A
    # compute after the transfer overlaps nothing and keeps its 1 s; an uncontended one is
    # never stretched.
    s = Schedule(1, contention=0.5)
    issue = s.compute(0, 0.5, thread="host", contended=False)
    t = s.collective([0], 1.0, after=[issue])
    gemm = s.compute(0, 2.0)
    later = s.compute(0, 1.0, after=[gemm])
    bookkeeping = s.compute(0, 1.0, thread="other", contended=False)
    run = s.run()
    assert (run.start_s[t], run.end_s[t]) == (0.5, 1.5)
    assert run.end_s[gemm] == pytest.approx(2.5)
    assert (run.start_s[later], run.end_s[later]) == (pytest.approx(2.5), pytest.approx(3.5))
    assert run.end_s[bookkeeping] == 1.0


def test_contention_counts_the_union_of_transfers_once():
    # Two transfers on rank 0's two directions overlap one another: its send [0, 2] and a
    # send it receives from rank 1 (issued after 1 s) [1, 3]. The union over a 4 s compute
    # is [0, 3], so with c = 1 it lasts 4 + 3 = 7 s (not 4 + 2 + 2).
    s = Schedule(2, contention=1.0)
    s.send(0, 1, 2.0)
    wait = s.compute(1, 1.0, thread="host", contended=False)
    s.send(1, 0, 2.0, after=[wait])
    gemm = s.compute(0, 4.0)
    assert s.run().end_s[gemm] == pytest.approx(7.0)


def test_dependencies_and_thread_order():
    # One thread runs ops by ready time, then priority, then creation order. a (1 s) ends at
    # 1; b (after a) and c (after a, priority -1) are both ready at 1: c runs [1, 2], b [2, 3].
    # d on another thread waits for b across threads: [3, 3.5].
    s = Schedule(1)
    a = s.compute(0, 1.0)
    b = s.compute(0, 1.0, after=[a])
    c = s.compute(0, 1.0, after=[a], priority=-1)
    d = s.compute(0, 0.5, after=[b], thread="other")
    run = s.run()
    assert (run.start_s[c], run.start_s[b], run.start_s[d], run.end_s[d]) == (1.0, 2.0, 3.0, 3.5)


def test_last_runs_on_the_thread_that_finished_last():
    # x on "gemm" ends at 2, y on "recv" ends at 1: z (after both, thread=LAST) runs on "gemm",
    # so the next gemm op (ready at 2, created before z but with priority 0 > -1) waits for it.
    s = Schedule(1)
    x = s.compute(0, 2.0, thread="gemm")
    y = s.compute(0, 1.0, thread="recv")
    nxt = s.compute(0, 1.0, after=[x], thread="gemm")
    z = s.compute(0, 0.5, after=[x, y], thread=LAST, priority=-1)
    run = s.run()
    assert run.thread[z] == "gemm" and (run.start_s[z], run.start_s[nxt]) == (2.0, 2.5)
    # the other way round (y later), z runs on "recv" beside the next gemm op
    s = Schedule(1)
    x = s.compute(0, 1.0, thread="gemm")
    y = s.compute(0, 2.0, thread="recv")
    nxt = s.compute(0, 1.0, after=[x], thread="gemm")
    z = s.compute(0, 0.5, after=[x, y], thread=LAST)
    run = s.run()
    assert run.thread[z] == "recv" and (run.start_s[z], run.start_s[nxt]) == (2.0, 1.0)


def test_bad_input_names_the_problem():
    s = Schedule(2)
    with pytest.raises(ValueError, match="rank must be"):
        s.compute(2, 1.0)
    with pytest.raises(ValueError, match="duration"):
        s.compute(0, -1.0)
    with pytest.raises(ValueError, match="duration"):
        s.collective([0, 1], float("nan"))
    with pytest.raises(ValueError, match="not an earlier operation"):
        s.compute(0, 1.0, after=[5])
    with pytest.raises(ValueError, match="two different ranks"):
        s.send(1, 1, 1.0)
    with pytest.raises(ValueError, match="n_ranks"):
        Schedule(0)
    with pytest.raises(ValueError, match="contention"):
        Schedule(1, contention=-0.1)


def test_a_thread_named_like_a_link_direction_is_still_a_thread():
    # compute on a thread called "out" runs beside the rank's outgoing send: both [0, 1]
    s = Schedule(2)
    c = s.compute(0, 1.0, thread="out")
    m = s.send(0, 1, 1.0)
    run = s.run()
    assert (run.start_s[c], run.start_s[m]) == (0.0, 0.0)
