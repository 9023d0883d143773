"""Distributions, noise, Mixup and the MLP."""

import numpy as np
import pytest
import torch

from companion.calibration.mixup import binned_predictor_kl, mix_batch, mixup_optimal_predictor
from companion.calibration.noise import pair_flip_noise, symmetric_noise
from companion.calibration.training import MLPClassifier
from companion.distributions import TwoGaussians, WarmupOverlap1D, WarmupOverlapND


@pytest.mark.parametrize("dist", [WarmupOverlap1D(4, 0.3), WarmupOverlapND(6, 0.5, 3), TwoGaussians(5, 0.4)])
def test_sample_shapes_and_posterior_rows(dist):
    x, y = dist.sample(4000, 0)
    assert x.shape == (4000, dist.dim) and y.shape == (4000,) and y.dtype == np.int64
    post = dist.posterior(x)
    assert post.shape == (4000, dist.n_classes)
    assert np.allclose(post.sum(axis=1), 1.0)
    # the label's posterior is positive wherever the label was drawn
    assert np.all(post[np.arange(4000), y] > 0)
    x2, y2 = dist.sample(4000, 0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)


def test_warmup_overlap_mass_and_posterior_values():
    dist = WarmupOverlap1D(8, 0.4)
    x, _ = dist.sample(200_000, 3)
    assert dist.in_overlap(x).mean() == pytest.approx(0.4, abs=0.01)
    post = dist.posterior(np.array([[0.8], [0.3], [8 + 1.5]]))  # pair 0 overlap, class 0 only, class 3 only
    assert np.allclose(post[0, :2], 0.5) and post[1, 0] == 1 and post[2, 3] == 1
    with pytest.raises(ValueError, match="outside the support"):
        dist.posterior(np.array([[-1.0]]))


def test_two_gaussians_posterior_is_bayes():
    dist = TwoGaussians(10, 0.3)
    x, y = dist.sample(200_000, 4)
    p1 = dist.posterior(x)[:, 1]
    for lo in (0.2, 0.5, 0.7):
        sel = (p1 > lo) & (p1 < lo + 0.05)
        assert y[sel].mean() == pytest.approx(p1[sel].mean(), abs=0.02)
    assert np.mean((p1 > 0.5) != y) == pytest.approx(dist.bayes_error(), abs=0.01)


@pytest.mark.parametrize("make,match", [
    (lambda: WarmupOverlap1D(3, 0.5), "even"),
    (lambda: WarmupOverlap1D(4, 1.5), "overlap"),
    (lambda: WarmupOverlap1D(4, 0.5, spacing=1.0), "spacing"),
    (lambda: WarmupOverlapND(4, 0.5, 0), "dim"),
    (lambda: TwoGaussians(10, -0.1), "mu"),
    (lambda: TwoGaussians(10, 0.1).sample(0, 0), "positive integer"),
    (lambda: TwoGaussians(10, 0.1).sample(5, None), "irreproducible"),
    (lambda: TwoGaussians(10, 0.1).posterior(np.zeros((2, 3))), r"\(n, 10\)"),
])
def test_distribution_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_pair_flip_noise():
    y = np.repeat(np.arange(10), 2000)
    noisy, mapping = pair_flip_noise(y, 10, 0.3, 0)
    assert np.all(mapping != np.arange(10))
    flipped = noisy != y
    assert flipped.mean() == pytest.approx(0.3, abs=0.02)
    assert np.array_equal(noisy[flipped], mapping[y[flipped]])  # always the class's one partner
    assert np.array_equal(pair_flip_noise(y, 10, 0.0, 0)[0], y)
    with pytest.raises(ValueError, match="noise rate"):
        pair_flip_noise(y, 10, 1.2, 0)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        pair_flip_noise(y, 5, 0.1, 0)


def test_symmetric_noise():
    y = np.repeat(np.arange(5), 4000)
    noisy = symmetric_noise(y, 5, 0.4, 1)
    flipped = noisy != y
    assert flipped.mean() == pytest.approx(0.4, abs=0.02)
    # flips spread over the 4 other classes evenly
    counts = np.bincount((noisy[flipped & (y == 0)]), minlength=5)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] / counts[1:].sum() - 0.25) < 0.05)


def test_mix_batch_is_convex():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    t = np.eye(4)[rng.integers(0, 4, 64)]
    xm, tm = mix_batch(x, t, alpha=1.0, mix_size=3, rng=1)
    assert xm.shape == x.shape and np.allclose(tm.sum(axis=1), 1.0)
    assert np.all(xm.max(axis=0) <= x.max(axis=0) + 1e-12)
    with pytest.raises(ValueError, match="mix_size"):
        mix_batch(x, t, alpha=1.0, mix_size=1, rng=1)


def test_mixup_optimal_predictor_edges():
    dist = WarmupOverlap1D(2, 0.5)
    edges = np.linspace(0, 1.5, 16)
    pred = mixup_optimal_predictor(dist, edges, n_samples=400_000, rng=0)
    assert np.allclose(pred.sum(axis=1), 1.0)
    # a mixture landing in [0, 0.1) needs all points near 0, where only class 0 lives
    assert pred[0, 0] > 0.95
    # by the pair's mirror symmetry the prediction at the centre of the overlap (x = 0.75) is 1/2
    assert pred[7, 0] == pytest.approx(0.5, abs=0.02)


@pytest.fixture
def one_torch_thread():
    """Tiny networks train fastest on one thread, and a shared machine stays responsive."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_mlp_erm_interpolates_and_is_deterministic(one_torch_thread):
    x, y = WarmupOverlapND(4, 0.5, 20).sample(200, 0)  # 20-D: room to separate overlapping points
    kw = dict(hidden=(128, 128), epochs=400, batch_size=200, lr=1e-2, seed=1)
    a = MLPClassifier(4, **kw).fit(x, y)
    b = MLPClassifier(4, **kw).fit(x, y)
    assert np.array_equal(a.decision_function(x), b.decision_function(x))
    assert a.train_loss_ < 1e-3 and np.all(a.predict(x) == y)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        MLPClassifier(3).fit(x, y)
    with pytest.raises(ValueError, match="not fitted"):
        MLPClassifier(4).decision_function(x)


def test_mlp_mixup_runs_all_epochs_with_soft_targets(one_torch_thread):
    x, y = WarmupOverlapND(4, 0.5, 5).sample(200, 0)
    m = MLPClassifier(4, hidden=(32,), epochs=20, batch_size=100, mixup_alpha=1.0, mix_size=3, seed=0).fit(x, y)
    assert m.epochs_run_ == 20
    p = m.predict_proba(x)
    assert np.allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="alpha"):
        MLPClassifier(4, mixup_alpha=-1.0).fit(x, y)


def test_binned_predictor_kl_of_uniform_table():
    dist = WarmupOverlap1D(8, 0.4)
    edges = np.linspace(-0.1, 3 * dist.spacing + 2.1, 50)
    table = np.full((49, 8), 1 / 8)
    # log k minus the posterior's mean entropy, rho log 2
    assert binned_predictor_kl(dist, edges, table, n=100_000, rng=0) == pytest.approx(
        np.log(8) - 0.4 * np.log(2), abs=0.01)
    with pytest.raises(ValueError, match="outside edges"):
        binned_predictor_kl(dist, edges[:10], table[:9], n=100, rng=0)
    with pytest.raises(ValueError, match="shape"):
        binned_predictor_kl(dist, edges, table[:, :4], n=100, rng=0)


def test_class_interval():
    dist = WarmupOverlap1D(4, 0.3)
    assert dist.class_interval(3) == pytest.approx((4 + 0.7, 4 + 1.7))
    with pytest.raises(ValueError, match="class"):
        dist.class_interval(4)
