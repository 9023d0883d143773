"""Ladder's tensor-parallel workers under ``strict_device``: every tensor on ``comm.device()``."""

import torch

from companion import lm
from companion.comm.result_shape import assert_same_shape, both_ways
from companion.ladder.workers import FREE_NETWORK, LinkPerCompute, speed_worker, tp_logits_worker

CFG = lm.GPTConfig(vocab_size=16, seq_len=16, d_model=16, n_layers=2, n_heads=2, mlp_ratio=2)


def test_tp_logits_are_equal_under_strict_placement():
    tokens = torch.randint(0, CFG.vocab_size, (2, 5), generator=torch.Generator().manual_seed(0))
    plain, strict = both_ways(tp_logits_worker, 2, CFG, [0, CFG.n_layers], tokens, 0)
    for p, s in zip(plain, strict):
        for k in p:
            assert s[k].device.type == "cpu"
            torch.testing.assert_close(s[k], p[k], rtol=0, atol=0)


def test_speed_worker_timings_have_the_same_structure():
    settings = {"free": FREE_NETWORK, "bare": None, "a=c": LinkPerCompute(1.0)}
    cases = [("free", 1), ("bare", 1), ("a=c", 1)]
    plain, strict = both_ways(speed_worker, 2, CFG, settings, cases, 3, 2, 1, "a=c")
    assert_same_shape(plain, strict)
