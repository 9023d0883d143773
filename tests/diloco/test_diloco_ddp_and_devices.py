"""DDP is the data-parallel baseline, and every worker keeps its tensors on ``comm.device()``."""

import math

import pytest
import torch
from torch.nn.utils import parameters_to_vector

from companion import comm, lm
from companion.comm.result_shape import both_ways
from companion.diloco import runner, selftest
from companion.diloco.spec import RunSpec
from companion.lm import ddp

# 31 kB of gradients: a 0.01 MiB cap (10 kB) gives DDP several buckets
TINY = RunSpec(steps=8, H=4, batch_size=2, seq_len=8, d_model=16, n_heads=2, n_layers=2, eval_seqs=8,
               eval_every=4, bucket_cap_mb=0.01)
SPECS = [
    TINY.with_(method="data_parallel"),  # DDP
    TINY,  # DiLoCo
    TINY.with_(n_fragments=2, tau=1, alpha=0.5),  # Streaming, overlapped, fp32 all-reduce
    TINY.with_(n_fragments=2, tau=1, alpha=0.5, bits=4),  # the 4-bit reducer (all-gathers)
]
@pytest.fixture(scope="module")
def three_ways():
    return comm.launch(selftest.dp_three_ways, 2, TINY, 5, timeout_s=120)


def test_ddp_equals_the_hand_written_average(three_ways):
    for rank in three_ways:
        hand, hooked, timed = (rank[h] for h in selftest.HOWS)
        # our hook is allreduce_hook through a ModelledLink: bit for bit the same training
        assert timed["losses"] == hooked["losses"]
        assert torch.equal(timed["params"], hooked["params"])
        # DDP divides before summing, the old code after: the same average to float tolerance
        torch.testing.assert_close(torch.tensor(timed["losses"]), torch.tensor(hand["losses"]))
        torch.testing.assert_close(timed["params"], hand["params"])
    # and the ranks stay in sync
    assert torch.equal(three_ways[0]["timed"]["params"], three_ways[1]["timed"]["params"])


def test_buckets_carry_exactly_the_gradients(three_ways):
    for rank in three_ways:
        n_bytes = 4 * rank["n_params"]  # fp32 gradients of every parameter
        steps = sorted({b.step for b in rank["buckets"]})
        assert steps == [1, 2, 3, 4, 5]
        sizes = {t: sorted(b.nbytes for b in rank["buckets"] if b.step == t) for t in steps}
        for t in steps:
            assert sum(sizes[t]) == n_bytes, (t, sizes[t])
        assert len(sizes[1]) == 1  # DDP's first step: one bucket, then it rebuilds them
        assert len(sizes[2]) > 1 and all(sizes[t] == sizes[2] for t in steps[1:])
        cap = int(TINY.bucket_cap_mb * 1024 * 1024)
        assert max(sizes[2]) < 2 * cap  # a bucket closes once it reaches the cap
        assert all(b.nbytes == 4 * b.numel and b.done_s >= b.issued_s for b in rank["buckets"])


def test_bucket_overlap_splits_the_communication(three_ways):
    for rank in three_ways:
        o = rank["overlap"]
        assert o["comm_s"] > 0 and math.isclose(o["hidden_s"] + o["exposed_s"], o["comm_s"], rel_tol=1e-9)
        # the last bucket is issued when backward ends: it, at least, is never hidden
        last = [max((b for b in rank["buckets"] if b.step == t), key=lambda b: b.issued_s)
                for t in range(2, 6)]
        assert o["exposed_s"] >= 0.99 * sum(b.done_s - b.issued_s for b in last)
        assert 0.0 <= o["hidden_fraction"] < 1.0


@pytest.fixture(scope="module")
def loose_and_strict():
    return both_ways(runner.train_many, 2, SPECS, timeout_s=180)


def test_every_worker_runs_under_strict_placement_with_the_same_numbers(loose_and_strict):
    loose, strict = loose_and_strict
    for rank in range(2):
        for spec, a, b in zip(SPECS, loose[rank], strict[rank]):
            for key in ("eval_losses", "train_losses", "records", "bytes_on_link"):
                assert a[key] == b[key], (spec.label, key)
            if rank == 0:
                assert a["outer"].keys() == b["outer"].keys()
                assert all(torch.equal(a["outer"][k], b["outer"][k]) for k in a["outer"])
                assert all(v.device.type == "cpu" for v in b["outer"].values())  # picklable anywhere
            assert [(x.step, x.index, x.nbytes) for x in a["buckets"]] == [
                (x.step, x.index, x.nbytes) for x in b["buckets"]]
    assert loose[0][0]["buckets"] and not loose[0][1]["buckets"]  # DDP records, DiLoCo none


def test_models_are_built_on_the_host_whatever_the_default_device():
    with comm.strict_placement():
        torch.manual_seed(0)
        naive = lm.GPT(TINY.model_config())  # what initial_model did before: lands on meta
        placed = TINY.initial_model()
    assert next(naive.parameters()).device.type == "meta"
    assert {p.device.type for p in placed.parameters()} == {"cpu"}
    assert torch.equal(parameters_to_vector(placed.parameters()),
                       parameters_to_vector(TINY.initial_model().parameters()))


@pytest.mark.parametrize("cap", [0, -1.0, float("inf"), "25", True])
def test_bad_bucket_cap_is_refused_by_name(cap):
    with pytest.raises(ValueError, match="bucket_cap_mb"):
        TINY.with_(method="data_parallel", bucket_cap_mb=cap)
