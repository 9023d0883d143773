"""Collectives in real processes: modelled completion times, ring collectives, quantised all-reduce."""

import pytest
import torch

from companion import comm
from companion.comm import selftest

LATENCY, BANDWIDTH, NUMEL = 2e-3, 4e7, 250_000  # a 1 MB all-reduce over 2 ranks: 2 (2 ms + 12.5 ms)


@pytest.fixture(scope="module")
def checks():
    return comm.launch(selftest.modelled_link_checks, 2, LATENCY, BANDWIDTH, NUMEL, timeout_s=90)


def test_all_reduce_really_reduces(checks):
    for r in checks:
        assert torch.equal(r["a"], torch.full((3,), 3.0))
        assert torch.equal(r["b"], torch.full((3,), 30.0))


def test_completion_times_follow_the_link_clock(checks):
    link = comm.Link(LATENCY, BANDWIDTH)
    cost = link.allreduce_time(NUMEL * 4, 2)  # 2 (alpha + n / (2 beta)) = 29 ms
    for r in checks:
        assert r["first_cost_s"] == pytest.approx(cost) and r["second_cost_s"] == pytest.approx(cost)
        # the first starts on every rank when the later rank has issued it (perf_counter is
        # one clock for all processes of a machine). The link measures issue times from each
        # rank's last barrier exit, so in absolute time the ranks agree only up to how far
        # apart they left that barrier (milliseconds on a loaded machine): allow that skew.
        skew = max(c["epoch_abs_s"] for c in checks) - min(c["epoch_abs_s"] for c in checks)
        last_issue = max(c["t0_abs_s"] + c["issue_s"] for c in checks)
        assert r["first_start_abs_s"] <= last_issue + skew + 0.005
        assert r["first_start_abs_s"] >= max(c["t0_abs_s"] for c in checks) - skew - 0.005
        # the second transfer queues behind the first on the one link clock
        assert r["second_queued_s"] == pytest.approx(0.0, abs=1e-9)
        assert r["second_done_s"] - r["first_start_s"] == pytest.approx(2 * cost)
        assert 0 <= r["second_late_s"] < 0.03  # returns at the modelled time (a loaded machine wakes late)
        assert cost <= r["sync_allreduce_s"] < cost + 0.03
        assert r["all_gather_s"] >= link.allgather_time(2 * 16, 2)
        assert r["reduce_scatter_s"] >= link.reduce_scatter_time(2 * 6 * 4, 2)
        assert r["p2p_s"] >= 2 * link.p2p_time(NUMEL * 4)  # send and receive share this rank's card


def test_other_collectives_give_real_values(checks):
    p = 2
    for rank, r in enumerate(checks):
        assert torch.equal(r["gathered"], torch.tensor([[0.0] * 4, [1.0] * 4]))
        assert torch.equal(r["broadcast"], torch.arange(4, dtype=torch.float32))
        full = torch.arange(p * 6, dtype=torch.float32).view(p * 2, 3) * 3  # ranks scale by 1 and 2
        assert torch.equal(r["reduce_scatter"], full[2 * rank: 2 * rank + 2])
        assert r["p2p_value"] == float((rank - 1) % p)


def test_bytes_sent(checks):
    n = NUMEL * 4
    for r in checks:
        assert r["bytes_after_allreduce"] == 2 * n  # two all-reduces, 2 (p - 1) / p n each
        # + sync all-reduce n, all-gather 16, broadcast (rank 0 only) 16, reduce-scatter 24, p2p n
        assert r["bytes_sent"] - r["bytes_after_allreduce"] in (n + 16 + 16 + 24 + n, n + 16 + 24 + n)


def test_contention_stretches_compute(checks):
    for r in checks:
        # the block overlapped the transfer for its whole body: stretched by c x body = 0.5 x body
        stretch = r["contended_s"] - r["contended_body_s"]
        assert 0.5 * r["contended_body_s"] - 0.002 <= stretch <= 0.5 * r["contended_body_s"] + 0.03


def test_timeline_records_comm_and_compute(checks):
    spans = checks[0]["spans"]
    kinds = {s.kind for s in spans}
    assert kinds == {"compute", "comm"}
    first = next(s for s in spans if s.kind == "comm")
    assert first.name == "all_reduce"
    cost = comm.Link(LATENCY, BANDWIDTH).allreduce_time(NUMEL * 4, 2)
    assert cost - 1e-9 <= first.duration_s < cost + 0.03  # ends at the later of modelled and real completion


def test_quantized_all_reduce_is_close_to_the_exact_sum(checks):
    for r in checks:
        err = (r["quantized_sum"] - r["exact_sum"]).abs().max().item()
        # each of 2 contributions is off by at most half a step: max|block| / 127 / 2
        assert err <= 2 * 4.5 / 127 / 2 + 1e-6
        assert err > 0


def test_ring_collectives_match_reference_sums():
    results = comm.launch(selftest.ring_collectives, 3, 2, 4, 0, timeout_s=90)
    for rank, r in enumerate(results):
        expected = r["inputs_sum"]
        torch.testing.assert_close(r["chunk"], expected[2 * rank: 2 * rank + 2])
        torch.testing.assert_close(r["gathered"], expected)
        torch.testing.assert_close(r["reference"], expected)


def test_bare_link_adds_no_delay_but_records(checks):
    for r in checks:
        assert [s.kind for s in r["bare_spans"]] == ["comm"]
        assert r["bare_spans"][0].duration_s <= r["bare_s"]
        assert r["bare_bytes"] == NUMEL * 4  # 2 (p - 1) / p n with p = 2


def test_a_fast_rank_waits_for_a_late_one():
    # 2 ranks, 4 MB all-reduce at 1e8 B/s and 1 ms latency: 2 x (1 ms + 2 MB / 1e8) = 42 ms.
    # Rank 1 issues 100 ms late, so both ranks end at 100 + 42 ms, not rank 0 at 42 ms.
    ends = comm.launch(selftest.late_rank_stall, 2, 1, 0.1, 1e-3, 1e8, 1_000_000, timeout_s=60)
    for end in ends:
        assert end == pytest.approx(0.142, abs=0.015)
