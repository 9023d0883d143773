import math

import pytest
import torch

from companion import lm

CFG = lm.GPTConfig(vocab_size=16, seq_len=32, d_model=32, n_layers=2, n_heads=4)


def test_shapes_and_layer_structure():
    torch.manual_seed(0)
    model = lm.GPT(CFG)
    logits = model(torch.randint(0, 16, (3, 20)))
    assert logits.shape == (3, 20, 16)
    assert isinstance(model.blocks, torch.nn.ModuleList) and len(model.blocks) == 2
    for block in model.blocks:
        assert isinstance(block.attn, torch.nn.Module) and isinstance(block.mlp, torch.nn.Module)
    assert model.n_params() == sum(p.numel() for p in model.parameters())


def test_model_is_causal():
    torch.manual_seed(0)
    model = lm.GPT(CFG)
    x = torch.randint(0, 16, (2, 10))
    y = x.clone()
    y[:, 7] = (y[:, 7] + 1) % 16
    a, b = model(x), model(y)
    torch.testing.assert_close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_initial_loss_is_near_log_vocab_and_training_reaches_towards_the_floor():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    src = lm.MarkovSource(vocab_size=16, order=2, concentration=0.3, seed=0)
    model = lm.GPT(CFG)
    start = lm.evaluate(model, src, n_seqs=64, seq_len=32, seed=1)
    assert abs(start - math.log(16)) < 0.1
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batches = lm.token_batches(src, 16, 32, seed=0)
    for _ in range(120):
        loss = lm.lm_loss(model, next(batches))
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = lm.evaluate(model, src, n_seqs=256, seq_len=32, seed=1)
    # learnt most of the way from log V towards the bigram entropy, never below the true floor
    assert end < src.conditional_entropy(1) + 0.3
    assert end > src.loss_floor(32) - 0.05
    assert model.training


def test_evaluate_is_deterministic_and_restores_mode():
    torch.manual_seed(0)
    src = lm.MarkovSource(vocab_size=16, order=2, seed=0)
    model = lm.GPT(CFG).eval()
    a = lm.evaluate(model, src, n_seqs=10, seq_len=16, seed=4, batch_size=4)
    b = lm.evaluate(model, src, n_seqs=10, seq_len=16, seed=4)
    assert a == pytest.approx(b, rel=1e-6)
    assert not model.training


def test_lm_loss_is_mean_next_token_cross_entropy():
    torch.manual_seed(0)
    model = lm.GPT(CFG)
    x = torch.randint(0, 16, (2, 9))
    logits = model(x[:, :-1])
    logp = torch.log_softmax(logits, dim=-1).gather(-1, x[:, 1:, None]).squeeze(-1)
    torch.testing.assert_close(lm.lm_loss(model, x), -logp.mean())


def test_bad_model_inputs_raise():
    with pytest.raises(ValueError, match="n_heads"):
        lm.GPTConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="n_layers"):
        lm.GPTConfig(n_layers=0)
    model = lm.GPT(CFG)
    with pytest.raises(ValueError, match="seq_len"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        lm.lm_loss(model, torch.zeros(4, dtype=torch.long))
