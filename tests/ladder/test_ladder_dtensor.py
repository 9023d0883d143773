"""PyTorch's own APIs at TP = 2 over gloo: DTensor's parallelize_module and functional collectives."""

import pytest
import torch
import torch.distributed as dist

from companion import lm
from companion.ladder import Decoder, shard_state_dict
from companion.ladder.communicators import FunctionalCollectives
from companion.ladder.dtensor_tp import FORMS, check_world_size, compare_tp_apis, interleave_qkv

CFG = lm.GPTConfig(vocab_size=16, seq_len=24, d_model=32, n_layers=2, n_heads=4, mlp_ratio=2)
TOKENS = torch.randint(0, CFG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))


def _state():
    torch.manual_seed(3)
    model = Decoder(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)  # order-one weights: every module moves the logits
    return model.state_dict()


@pytest.fixture(scope="module")
def apis():
    return compare_tp_apis(CFG, TOKENS, 2, state=_state(), timeout_s=120)


@pytest.mark.parametrize("form", FORMS)
def test_parallelize_module_gives_the_hand_sharded_logits(apis, form):
    for dtensor, hand, single in zip(apis.logits["dtensor", form], apis.logits["hand", form],
                                     [apis.reference[form]] * 2):
        torch.testing.assert_close(dtensor, hand, rtol=0, atol=1e-5)
        torch.testing.assert_close(dtensor, single, rtol=0, atol=1e-5)
    assert apis.gap("dtensor", form, against="hand") <= 1e-5


def test_interleaved_qkv_is_the_hand_shard_and_the_plain_split_is_wrong(apis):
    assert apis.qkv_shard_equal
    # a contiguous split of [q; k; v] runs (the shapes fit) but mixes queries and keys
    assert apis.gap("dtensor-naive", "standard") > 1e-2
    # and the two residual forms remain different functions under DTensor too
    assert (apis.logits["dtensor", "standard"][0] - apis.logits["dtensor", "ladder"][0]).abs().max() > 1e-2


@pytest.mark.parametrize("form", FORMS)
def test_functional_collectives_give_the_same_logits(apis, form):
    for funcol, hand in zip(apis.logits["funcol", form], apis.logits["hand", form]):
        torch.testing.assert_close(funcol, hand, rtol=0, atol=1e-6)


def test_functional_all_reduce_is_waited_at_first_use(apis):
    at_issue, after_wait, sum_ok = apis.deferred
    assert not at_issue  # issued, not waited: the caller's compute may run under it
    assert after_wait and sum_ok
    assert apis.rowwise_output_async  # DTensor's RowwiseParallel hands back the same kind of tensor


@pytest.mark.parametrize("tp_size", [1, 2, 4])
def test_interleave_makes_contiguous_blocks_the_per_head_shards(tp_size):
    state = _state()
    for name in ("blocks.0.attn.qkv.weight", "blocks.1.attn.qkv.bias"):
        blocks = interleave_qkv(state[name], tp_size).chunk(tp_size, dim=0)
        for r in range(tp_size):
            shard = shard_state_dict(state, CFG, tp_rank=r, tp_size=tp_size)[name]
            torch.testing.assert_close(blocks[r], shard, rtol=0, atol=0)
    if tp_size > 1:  # the plain split differs: rank 0 gets all of q
        plain = state["blocks.0.attn.qkv.weight"].chunk(tp_size, dim=0)[0]
        assert not torch.equal(plain, shard_state_dict(state, CFG, tp_rank=0, tp_size=tp_size)[
            "blocks.0.attn.qkv.weight"])


def test_bad_world_size_is_rejected_before_any_process_starts():
    names_the_fix = r"n_heads=4 is not divisible by the tensor-parallel world size 3.*\[1, 2, 4\]"
    with pytest.raises(ValueError, match=names_the_fix):
        compare_tp_apis(CFG, TOKENS, 3)
    with pytest.raises(ValueError, match="positive int"):
        check_world_size(CFG, 0)
    with pytest.raises(ValueError, match="96 rows does not split into 3 x 5 blocks"):
        interleave_qkv(torch.zeros(3 * CFG.d_model, CFG.d_model), 5)
    with pytest.raises(ValueError, match="tp_size"):
        interleave_qkv(torch.zeros(3 * CFG.d_model), 0)


@pytest.mark.skipif(dist.is_initialized(), reason="needs a process with no process group")
def test_functional_collectives_need_a_process_group():
    with pytest.raises(RuntimeError, match="inside a worker"):
        FunctionalCollectives()
