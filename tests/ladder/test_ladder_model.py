"""The single-process Decoder: standard equals companion.lm.GPT, Ladder follows its equation."""

import pytest
import torch

from companion import lm
from companion.ladder import Decoder, KVCache, reads_stale_stream

CFG = lm.GPTConfig(vocab_size=16, seq_len=24, d_model=32, n_layers=3, n_heads=4, mlp_ratio=2)


def _model(ladder_layers=0, seed=0):
    torch.manual_seed(seed)
    model = Decoder(CFG, ladder_layers=ladder_layers)
    # random (not N(0, 0.02)) weights so that every module changes the logits visibly
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.eval()


def _tokens(B=2, T=10, seed=1):
    return torch.randint(0, CFG.vocab_size, (B, T), generator=torch.Generator().manual_seed(seed))


def _modules(model):
    """The 2L functions h_j (pre-norm included) of a single-rank model."""
    out = []
    for block in model.blocks:
        out.append(lambda x, b=block: b.attn(b.ln_1(x)))
        out.append(lambda x, b=block: b.mlp(b.ln_2(x)))
    return out


def test_standard_decoder_equals_lm_gpt():
    torch.manual_seed(0)
    gpt = lm.GPT(CFG).eval()
    tokens = _tokens()
    torch.testing.assert_close(Decoder.from_gpt(gpt)(tokens), gpt(tokens))


def test_ladder_follows_its_equation():
    # x_{j+1} = x_j + h_j(x_{j-1}), with x_{-1} = x_0 (the embedding)
    model = _model(ladder_layers=CFG.n_layers)
    tokens = _tokens()
    x0 = model.tok_emb(tokens) + model.pos_emb(torch.arange(tokens.shape[1]))
    xs = [x0, x0]  # x_{-1}, x_0
    for h in _modules(model):
        xs.append(xs[-1] + h(xs[-2]))
    expected = model.head(model.ln_f(xs[-1]))
    torch.testing.assert_close(model(tokens), expected)


def test_hybrid_converts_only_the_upper_layers():
    # lower layer standard; from layer 1 on, every module after the first reads x_{j-1}
    model = _model(ladder_layers=2)
    tokens = _tokens()
    h = _modules(model)
    x = model.tok_emb(tokens) + model.pos_emb(torch.arange(tokens.shape[1]))
    x = x + h[0](x)
    x = x + h[1](x)  # layer 0: standard
    prev, x = x, x + h[2](x)  # first converted module reads the full stream
    for j in range(3, 6):
        prev, x = x, x + h[j](prev)
    torch.testing.assert_close(model(tokens), model.head(model.ln_f(x)))


def test_ladder_is_a_different_function_of_the_same_weights():
    standard = _model(ladder_layers=0)
    tokens = _tokens()
    for k in (1, CFG.n_layers):
        diff = (standard.with_ladder_layers(k)(tokens) - standard(tokens)).abs().max()
        assert diff > 1e-2, f"ladder_layers={k} gave the standard model's logits"


def test_reads_stale_stream_pattern():
    assert [reads_stale_stream(j, 3, 0) for j in range(6)] == [False] * 6
    assert [reads_stale_stream(j, 3, 3) for j in range(6)] == [False] + [True] * 5
    assert [reads_stale_stream(j, 3, 1) for j in range(6)] == [False] * 5 + [True]


@pytest.mark.parametrize("ladder_layers", [0, CFG.n_layers])
def test_kv_cache_decoding_matches_full_forward(ladder_layers):
    model = _model(ladder_layers=ladder_layers)
    tokens = _tokens(T=12)
    full = model(tokens)
    cache = KVCache()
    steps = [model(tokens[:, :8], cache=cache)]
    for t in range(8, 12):
        steps.append(model(tokens[:, t : t + 1], cache=cache))
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)
    assert cache.length == 12


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="ladder_layers"):
        Decoder(CFG, ladder_layers=4)
    with pytest.raises(ValueError, match="not divisible by tp_size=3"):
        Decoder(CFG, tp_size=3)
    with pytest.raises(ValueError, match="needs a communicator"):
        Decoder(CFG, tp_size=2)(_tokens())
    model = _model()
    with pytest.raises(ValueError, match="seq_len"):
        model(torch.zeros(1, CFG.seq_len + 1, dtype=torch.long))
    cache = KVCache()
    model(_tokens(T=4), cache=cache)
    with pytest.raises(ValueError, match="one token per call"):
        model(_tokens(T=2), cache=cache)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(5, dtype=torch.long))


def test_parallel_block_follows_its_equation():
    # x_{i+1} = x_i + attn_i(ln_1(x_i)) + mlp_i(ln_1(x_i)): one norm, both modules on the same input
    model = _model().with_parallel_blocks()
    tokens = _tokens()
    x = model.tok_emb(tokens) + model.pos_emb(torch.arange(tokens.shape[1]))
    for b in model.blocks:
        h = b.ln_1(x)
        x = x + b.attn(h) + b.mlp(h)
    torch.testing.assert_close(model(tokens), model.head(model.ln_f(x)))
    assert model.architecture == "parallel" and model.with_ladder_layers(0).architecture == "standard"


def test_three_forms_are_three_functions_of_the_same_weights():
    standard = _model()
    tokens = _tokens()
    logits = {name: m(tokens) for name, m in (("standard", standard),
                                              ("ladder", standard.with_ladder_layers(CFG.n_layers)),
                                              ("parallel", standard.with_parallel_blocks()))}
    for a, b in (("standard", "ladder"), ("standard", "parallel"), ("ladder", "parallel")):
        assert (logits[a] - logits[b]).abs().max() > 1e-2, (a, b)


def test_parallel_kv_cache_decoding_matches_full_forward():
    model = _model().with_parallel_blocks()
    tokens = _tokens(T=12)
    cache = KVCache()
    steps = [model(tokens[:, :8], cache=cache)]
    steps += [model(tokens[:, t : t + 1], cache=cache) for t in range(8, 12)]
    torch.testing.assert_close(torch.cat(steps, dim=1), model(tokens), rtol=1e-4, atol=1e-5)


def test_all_reduces_per_forward_and_parallel_validation():
    from companion.ladder import all_reduces_per_forward

    assert all_reduces_per_forward(3, parallel=True) == 3
    assert all_reduces_per_forward(3, parallel=False) == 6
    with pytest.raises(ValueError, match="n_layers must be a positive int"):
        all_reduces_per_forward(0, parallel=True)
    with pytest.raises(ValueError, match="no Ladder form.*ladder_layers=0"):
        Decoder(CFG, ladder_layers=1, parallel=True)
    with pytest.raises(ValueError, match="parallel must be True or False"):
        Decoder(CFG, parallel=1)
