"""The three methods on two real worker processes over gloo (one launch, a few seconds)."""

import math

import pytest

from companion import comm
from companion.comm.result_shape import both_ways
from companion.co2.experiments import run
from companion.co2.schedule import Schedule
from companion.co2.worker import RunSpec, TaskConfig, run_specs

TINY = TaskConfig(batch_size=2, seq_len=8, d_model=16, n_layers=1, n_heads=2, eval_seqs=8)


# 16 kB of gradients: a 0.005 MiB cap gives DDP several buckets
SPECS = [RunSpec(Schedule.data_parallel(), 8, bucket_cap_mb=0.005), RunSpec(Schedule.local_sgd(4), 8),
         RunSpec(Schedule.co2(4), 8)]


@pytest.fixture(scope="module")
def both():
    return both_ways(run_specs, 2, TINY, SPECS, timeout_s=120.0)


@pytest.fixture(scope="module")
def per_rank(both):
    return both[0]


def test_strict_placement_changes_no_number(both):
    per_rank, strict = both
    for loose_rank, strict_rank in zip(per_rank, strict):
        for a, b in zip(loose_rank, strict_rank):
            assert (a.losses, a.param_norm, a.bytes_sent, a.tokens) == (
                b.losses, b.param_norm, b.bytes_sent, b.tokens), a.name
            assert a.eval_loss == b.eval_loss or (math.isnan(a.eval_loss) and math.isnan(b.eval_loss))
            assert [(x.step, x.nbytes) for x in a.buckets] == [(x.step, x.nbytes) for x in b.buckets]


def test_ranks_end_in_sync(per_rank):
    for r0, r1 in zip(per_rank[0], per_rank[1]):
        assert r0.param_norm == pytest.approx(r1.param_norm, rel=1e-6), r0.name
        assert r0.losses != r1.losses  # each rank saw its own data
        assert math.isfinite(r0.eval_loss) and math.isnan(r1.eval_loss)


def test_bytes_on_the_wire(per_rank):
    n_bytes = 4 * sum(p.numel() for p in TINY.model().parameters())
    dp, local, co2 = (r.bytes_sent for r in per_rank[0])
    # ring all-reduce of n bytes over 2 ranks sends n: 8 per-step reductions vs 2 per-round
    assert dp == 8 * n_bytes
    assert local == co2 == 2 * n_bytes
    # data-parallel's DDP buckets: every step all-reduces each gradient once, in several buckets
    buckets = per_rank[0][0].buckets
    for step in range(1, 9):
        assert sum(b.nbytes for b in buckets if b.step == step) == n_bytes
    assert len([b for b in buckets if b.step == 8]) > 1
    assert not per_rank[0][1].buckets and not per_rank[0][2].buckets


def test_run_validates():
    with pytest.raises(ValueError, match="specs is empty"):
        run([])
    with pytest.raises(ValueError, match="world_size"):
        run([RunSpec(Schedule.co2(2), 2)], world_size=0)
