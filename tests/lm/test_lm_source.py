import numpy as np
import pytest
import torch

from companion import lm


@pytest.fixture(scope="module")
def src():
    return lm.MarkovSource(vocab_size=16, order=2, concentration=0.3, seed=0)


def test_transitions_are_distributions_and_pi_is_stationary(src):
    P, pi = src.transitions, src.stationary
    assert P.shape == (16**2, 16)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    assert pi.shape == (16**2,) and abs(pi.sum() - 1) < 1e-12 and (pi >= 0).all()
    # one step of the context chain leaves pi unchanged
    moved = (pi[:, None] * P).reshape(16, 16**2).sum(axis=0)
    np.testing.assert_allclose(moved, pi, atol=1e-10)


@pytest.mark.parametrize("backoff", [None, 2.0])
def test_entropy_rate_matches_the_empirical_log_loss(backoff):
    src = lm.MarkovSource(vocab_size=16, order=2, concentration=0.3, seed=1, backoff=backoff)
    x = src.sample(2000, 40, rng=3)
    empirical = float(-src.log_prob(x).mean())
    # 2000 * 38 tokens: the standard error of the mean log-loss is far below 0.02 nats
    assert abs(empirical - src.entropy_rate) < 0.02
    assert 0 < src.entropy_rate < np.log(16)


def test_conditional_entropies_decrease_to_the_rate_and_bound_the_floor(src):
    h = [src.conditional_entropy(n) for n in range(4)]
    assert h[0] >= h[1] >= h[2] == h[3] == src.entropy_rate
    assert src.entropy_rate < src.loss_floor(32) < h[0]
    # the floor is the mean of the per-position conditional entropies
    assert src.loss_floor(3) == pytest.approx((h[1] + h[2]) / 2)


def test_backoff_makes_short_contexts_informative():
    flat = lm.MarkovSource(vocab_size=32, order=2, concentration=0.3, seed=0, backoff=None)
    nested = lm.MarkovSource(vocab_size=32, order=2, concentration=0.3, seed=0, backoff=2.0)
    # without back-off the last token alone tells almost nothing; with it, it tells a lot
    assert flat.conditional_entropy(1) > 0.95 * flat.conditional_entropy(0)
    assert nested.conditional_entropy(1) < 0.7 * nested.conditional_entropy(0)


def test_sample_shape_range_and_determinism(src):
    a = src.sample(5, 12, rng=7)
    b = src.sample(5, 12, rng=np.random.default_rng(7))
    assert a.dtype == torch.int64 and a.shape == (5, 12)
    assert int(a.min()) >= 0 and int(a.max()) < 16
    assert torch.equal(a, b)
    assert not torch.equal(a, src.sample(5, 12, rng=8))
    assert src.sample(3, 1, rng=0).shape == (3, 1)


def test_token_batches_are_reproducible_and_disjoint_per_rank(src):
    r0 = lm.token_batches(src, 4, 16, seed=0, rank=0, world_size=2)
    r1 = lm.token_batches(src, 4, 16, seed=0, rank=1, world_size=2)
    again = lm.token_batches(src, 4, 16, seed=0, rank=0, world_size=2)
    a, b, c = next(r0), next(r1), next(again)
    assert a.shape == (4, 16)
    assert torch.equal(a, c)
    assert not torch.equal(a, b)
    assert not torch.equal(a, next(r0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(vocab_size=1), "vocab_size"),
        (dict(order=0), "order"),
        (dict(concentration=0.0), "concentration"),
        (dict(backoff=-1.0), "backoff"),
        (dict(vocab_size=4096, order=3), "contexts"),
    ],
)
def test_bad_source_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lm.MarkovSource(**kwargs)


def test_bad_sampling_arguments_raise(src):
    with pytest.raises(ValueError, match="n_seqs"):
        src.sample(0, 4, rng=0)
    with pytest.raises(ValueError, match="rank"):
        next(lm.token_batches(src, 2, 8, seed=0, rank=2, world_size=2))
    with pytest.raises(ValueError, match="seq_len"):
        src.loss_floor(1)
    with pytest.raises(ValueError, match="None"):
        src.sample(2, 4, rng=None)
