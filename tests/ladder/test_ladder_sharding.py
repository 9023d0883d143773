"""Megatron sharding: round trips, partial sums, and TP = 1 vs TP = p equivalence (ranks as threads)."""

import pytest
import torch

from companion import lm
from companion.ladder import (
    Decoder,
    KVCache,
    gather_model,
    gather_state_dicts,
    shard_model,
    shard_state_dict,
)
from companion.ladder.threads import run_threads

CFG = lm.GPTConfig(vocab_size=16, seq_len=24, d_model=32, n_layers=3, n_heads=4, mlp_ratio=2)


def _model(ladder_layers=0):
    torch.manual_seed(0)
    model = Decoder(CFG, ladder_layers=ladder_layers)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


TOKENS = torch.randint(0, CFG.vocab_size, (2, 10), generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("tp_size", [1, 2, 4])
def test_shard_then_gather_is_the_identity(tp_size):
    state = _model().state_dict()
    shards = [shard_state_dict(state, CFG, tp_rank=r, tp_size=tp_size) for r in range(tp_size)]
    back = gather_state_dicts(shards, CFG)
    assert back.keys() == state.keys()
    for k in state:
        torch.testing.assert_close(back[k], state[k], rtol=0, atol=0)


def test_shard_shapes_follow_the_plan():
    shard = shard_model(_model(), tp_rank=1, tp_size=2)
    block = shard.blocks[0]
    assert block.attn.qkv.weight.shape == (3 * 16, 32)  # column: 2 of 4 heads, from q, k and v
    assert block.attn.proj.weight.shape == (32, 16)  # row
    assert block.mlp.fc.weight.shape == (32, 32)  # column: half of 64 hidden units
    assert block.mlp.proj.weight.shape == (32, 32)  # row
    assert torch.all(block.mlp.proj.bias == 0)  # rank 1 carries no row-parallel bias


def test_gather_model_inverts_shard_model():
    model = _model(ladder_layers=2)
    back = gather_model([shard_model(model, tp_rank=r, tp_size=4) for r in range(4)])
    assert back.ladder_layers == 2
    torch.testing.assert_close(back(TOKENS), model(TOKENS), rtol=0, atol=0)


@pytest.mark.parametrize("tp_size", [2, 4])
def test_partial_outputs_sum_to_the_full_module(tp_size):
    model = _model()
    x = torch.randn(2, 5, CFG.d_model)
    shards = [shard_model(model, tp_rank=r, tp_size=tp_size) for r in range(tp_size)]
    for name in ("attn", "mlp"):
        full = getattr(model.blocks[1], name)(x)
        partial = sum(getattr(s.blocks[1], name)(x) for s in shards)
        torch.testing.assert_close(partial, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ladder_layers", [0, 2, CFG.n_layers])
@pytest.mark.parametrize("tp_size", [2, 4])
def test_tensor_parallel_forward_equals_single_process(tp_size, ladder_layers):
    model = _model(ladder_layers=ladder_layers)
    expected = model(TOKENS)
    shards = [shard_model(model, tp_rank=r, tp_size=tp_size) for r in range(tp_size)]
    logits = run_threads(lambda r, comm: shards[r](TOKENS, comm), tp_size)
    for out in logits:
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_tensor_parallel_decoding_equals_single_process():
    model = _model(ladder_layers=CFG.n_layers)
    expected = model(TOKENS)
    shards = [shard_model(model, tp_rank=r, tp_size=2) for r in range(2)]

    def decode(rank, comm):
        cache = KVCache()
        steps = [shards[rank](TOKENS[:, :6], comm, cache=cache)]
        steps += [shards[rank](TOKENS[:, t : t + 1], comm, cache=cache) for t in range(6, 10)]
        return torch.cat(steps, dim=1)

    for out in run_threads(decode, 2):
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_one_all_reduce_per_module():
    counts = {}

    def count(rank, comm):
        shard_model(_model(), tp_rank=rank, tp_size=2)(TOKENS, comm)
        counts[rank] = comm.n_all_reduces

    run_threads(count, 2)
    assert counts == {0: 2 * CFG.n_layers, 1: 2 * CFG.n_layers}


def test_bad_sharding_inputs_raise():
    state = _model().state_dict()
    with pytest.raises(ValueError, match="tp_rank"):
        shard_state_dict(state, CFG, tp_rank=2, tp_size=2)
    with pytest.raises(ValueError, match="not divisible by tp_size=3"):
        shard_state_dict(state, CFG, tp_rank=0, tp_size=3)
    with pytest.raises(ValueError, match="full model"):
        shard_model(shard_model(_model(), tp_rank=0, tp_size=2), tp_rank=0, tp_size=2)
    with pytest.raises(ValueError, match="one shard per rank"):
        gather_model([shard_model(_model(), tp_rank=0, tp_size=2)])
    shards = [shard_state_dict(state, CFG, tp_rank=r, tp_size=2) for r in range(2)]
    del shards[1]["head.bias"]
    with pytest.raises(ValueError, match="shard 1"):
        gather_state_dicts(shards, CFG)


@pytest.mark.parametrize("tp_size", [2, 4])
def test_parallel_blocks_at_tp_equal_single_process(tp_size):
    model = _model().with_parallel_blocks()
    expected = model(TOKENS)
    shards = [shard_model(model, tp_rank=r, tp_size=tp_size) for r in range(tp_size)]
    assert all(s.parallel for s in shards) and gather_model(shards).parallel
    logits = run_threads(lambda r, comm: shards[r](TOKENS, comm), tp_size)
    for out in logits:
        torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)


def test_one_all_reduce_per_parallel_layer():
    counts = {}

    def count(rank, comm):
        shard_model(_model().with_parallel_blocks(), tp_rank=rank, tp_size=2)(TOKENS, comm)
        counts[rank] = comm.n_all_reduces

    run_threads(count, 2)
    assert counts == {0: CFG.n_layers, 1: CFG.n_layers}
