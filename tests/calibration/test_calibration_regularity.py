"""The regular-interpolator bound, its measurement, and the package fixes of issue 14."""

import numpy as np
import pytest
import torch

from companion.calibration import OracleTemperatureScaler, ace, ece, nll_from_logits
from companion.calibration.regularity import (best_measured_bound, gap_and_range,
                                              gap_and_spread, gap_profile,
                                              linear_lower_bound, oracle_ts_lower_bound,
                                              overlap_floor, pure_floor)
from companion.calibration.reliability import prepare_reliability_diagram
from companion.calibration.temperature import temperature_sweep
from companion.calibration.theory import binary_entropy, oracle_ts_kl
from companion.calibration.training import MLPClassifier
from companion.distributions import WarmupOverlap1D


@pytest.mark.parametrize("k", [2, 3, 8, 32])
@pytest.mark.parametrize("rho", [0.25, 0.5, 0.75])
def test_bound_at_kappa_one_is_the_symmetric_closed_form(k, rho):
    # the general bound with j = k - 1, kappa = 1 must reduce to part 2's closed form, an
    # independent formula; it is certified from below, so it sits just under it
    phi = oracle_ts_lower_bound(rho, 1 - rho, k, 1.0)
    assert 0 <= float(oracle_ts_kl(k, rho)) - phi < 3e-3


def test_floors_are_the_exact_kl_of_the_extreme_logit_vectors():
    # overlap floor, first case: top = a, b at -Delta, the j - 1 others at -kappa Delta, the
    # rest at -inf; its KL against (1/2, 1/2) on {a, b} is the floor itself
    k, j, kappa, delta, temp = 6, 4, 2.0, 3.0, 1.7
    z = np.full(k, -1e9)
    z[0], z[1], z[2:2 + j - 1] = 0.0, -delta, -kappa * delta
    g = np.exp(z / temp) / np.exp(z / temp).sum()
    kl = -np.log(2) - 0.5 * np.log(g[0] * g[1])
    assert overlap_floor(delta / temp, j, kappa) <= kl + 1e-12
    assert overlap_floor(delta / temp, j, kappa) == pytest.approx(kl, rel=1e-9)
    # pure floor: the j runners-up all at -kappa Delta
    z = np.full(k, -1e9)
    z[0], z[1:1 + j] = 0.0, -kappa * delta
    g = np.exp(z / temp) / np.exp(z / temp).sum()
    assert pure_floor(delta / temp, j, kappa) == pytest.approx(-np.log(g[0]), rel=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_measured_bound_never_exceeds_the_oracle_kl_of_random_logit_maps(seed):
    # random (non-symmetric, non-smooth) logits on warm-up points: the theorem's steps 2-3
    # say the oracle-TS KL is at least the bound measured from gaps and spreads
    rng = np.random.default_rng(seed)
    k, rho = 6, 0.6
    dist = WarmupOverlap1D(k, rho)
    x, y = dist.sample(3000, rng)
    z = rng.normal(0, 1.5, size=(3000, k))
    z[np.arange(3000), y] += rng.uniform(3, 9, size=3000)
    oracle = OracleTemperatureScaler().fit(z, dist.posterior(x))
    best = best_measured_bound(z, dist.in_overlap(x), k, n_grid=6)
    assert 0.0 < best["bound"] <= oracle.kl_


def test_corollary_is_weaker_than_the_bound_and_needs_k3():
    for k in (3, 8, 32):
        assert linear_lower_bound(0.5, k) <= oracle_ts_lower_bound(0.5, 0.5, k)
    with pytest.raises(ValueError, match="k >= 3"):
        linear_lower_bound(0.5, 2)


@pytest.mark.parametrize("call, match", [
    (lambda: oracle_ts_lower_bound(0.7, 0.7, 4), "at most 1"),
    (lambda: oracle_ts_lower_bound(-0.1, 0.2, 4), "must lie in"),
    (lambda: oracle_ts_lower_bound(0.5, 0.5, 4, kappa=0.5), "at least 1"),
    (lambda: oracle_ts_lower_bound(0.5, 0.5, 4, j=4), r"\[1, 3\]"),
    (lambda: oracle_ts_lower_bound(0.5, 0.5, True), "integer >= 2"),
    (lambda: gap_and_spread(np.zeros((2, 3)), 0), "runner-up"),
])
def test_bound_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_gap_and_spread_by_hand():
    z = np.array([[3.0, 1.0, -2.0, 0.5]])
    gap, rng_ = gap_and_range(z)
    assert gap[0] == 2.0 and rng_[0] == 5.0
    assert gap_and_spread(z, 2)[1][0] == 2.5 and gap_and_spread(z, 3)[1][0] == 5.0


def test_gap_profile_at_radius_zero_is_the_training_gap():
    xa = np.array([[0.0, 0.0], [1.0, 1.0]])
    ya = np.array([0, 1])

    def f(x):  # linear logits: gap of the own label moves by at most 2 |w| r
        return np.stack([-x.sum(axis=1), x.sum(axis=1)], axis=1)

    prof = gap_profile(f, xa, ya, [0.0, 0.5], n_dirs=16, rng=0)
    gap0 = (f(xa)[np.arange(2), ya] - f(xa)[np.arange(2), 1 - ya])
    assert prof.gap_mean[0] == pytest.approx(gap0.mean())
    assert prof.drift_max[1] <= np.sqrt(2) + 1e-9  # |d/dx sum(x)| = sqrt(2)
    with pytest.raises(ValueError, match="non-negative"):
        gap_profile(f, xa, ya, [-1.0])


def test_temperature_sweep_minimum_matches_the_oracle():
    rng = np.random.default_rng(0)
    dist = WarmupOverlap1D(4, 0.5)
    x, y = dist.sample(2000, rng)
    z = 6.0 * np.eye(4)[y] + rng.normal(0, 0.5, size=(2000, 4))
    post = dist.posterior(x)
    oracle = OracleTemperatureScaler().fit(z, post)
    sweep = temperature_sweep(z, post, y, np.exp(np.linspace(-1, 3, 801)))
    assert sweep.kl.min() >= oracle.kl_ - 1e-9
    assert sweep.kl.min() == pytest.approx(oracle.kl_, abs=1e-4)
    with pytest.raises(ValueError, match="positive floats"):
        temperature_sweep(z, post, y, [0.0])


def test_ace_equals_installed_netcal():
    netcal = pytest.importorskip("netcal.metrics")
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(5) * 0.7, size=4000)
    labels = rng.integers(0, 5, size=4000)
    assert ace(probs, labels, 15) == pytest.approx(
        float(netcal.ACE(bins=15).measure(probs, labels)), abs=1e-9)
    assert ace(probs, labels, 15) != pytest.approx(ece(probs, labels, 15))


def test_nll_from_logits_equals_torch_cross_entropy():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 20, size=(500, 7))
    y = rng.integers(0, 7, size=500)
    ref = torch.nn.functional.cross_entropy(torch.tensor(z), torch.tensor(y)).item()
    assert nll_from_logits(z, y) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="NaN or inf"):
        nll_from_logits(np.full((2, 2), np.nan), [0, 1])


def test_reliability_diagram_bins_match_ece_helper():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), size=300)
    labels = rng.integers(0, 3, size=300)
    d = prepare_reliability_diagram(probs, labels, 10)
    assert d.ece == pytest.approx(ece(probs, labels, 10))
    assert np.isnan(d.confidence[d.count == 0]).all() and d.count.sum() == 300


def test_binary_entropy_uses_entr_and_checks_range():
    assert binary_entropy(0.5) == pytest.approx(np.log(2))
    assert binary_entropy(0.0) == 0.0 and binary_entropy(1.0) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        binary_entropy(1.5)


def test_mlp_accepts_numpy_integers_and_leaves_global_rng_alone():
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    state = torch.get_rng_state()
    a = MLPClassifier(np.int64(2), hidden=(np.int64(8),), epochs=np.int64(3),
                      batch_size=np.int64(20), seed=np.int64(4)).fit(x, y)
    assert torch.equal(state, torch.get_rng_state()), "fit must not touch torch's global RNG"
    b = MLPClassifier(2, hidden=(8,), epochs=3, batch_size=20, seed=4).fit(x, y)
    assert np.array_equal(a.decision_function(x), b.decision_function(x))
    assert len(a.loss_history_) == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"lr": 0.0}, "lr must be a positive"),
    ({"lr": -1e-3}, "lr must be a positive"),
    ({"lr": True}, "lr must be a positive"),
    ({"hidden": (0,)}, "every entry of hidden"),
    ({"hidden": (True,)}, "every entry of hidden"),
    ({"hidden": ()}, "non-empty tuple"),
    ({"hidden": 16}, "non-empty tuple"),
    ({"epochs": True}, "epochs must be an integer"),
    ({"batch_size": 0}, "batch_size must be an integer"),
    ({"stop_loss": -1.0}, "stop_loss"),
])
def test_mlp_bad_hyperparameters(kwargs, match):
    x = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(2, **kwargs).fit(x, np.array([0, 1, 0, 1]))


def test_mlp_rejects_bool_n_classes():
    with pytest.raises(ValueError, match="n_classes"):
        MLPClassifier(True).fit(np.zeros((2, 2)), np.array([0, 0]))


def test_within_pair_mixup_never_crosses_pairs_and_fills_empty_bins():
    from companion.calibration.mixup import mixup_optimal_predictor

    dist = WarmupOverlap1D(4, 0.5)  # pairs start at 0 and at 4
    edges = np.arange(-0.1, 6.11, 0.05)
    g = mixup_optimal_predictor(dist, edges, mix_size=3, n_samples=40_000, rng=0,
                                within_pair=True, fill_empty=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    assert not np.isnan(g).any() and np.allclose(g.sum(axis=1), 1.0)
    second = (centres > 4.0) & (centres < 5.5)
    assert np.all(g[second][:, :2] == 0.0), "a mixture of pair 1 carries no pair-0 label"
    plain = mixup_optimal_predictor(dist, edges, mix_size=3, n_samples=40_000, rng=0)
    assert np.nanmax(plain[second][:, :2]) > 0, "unrestricted mixing does cross pairs"


def test_mixup_profile_is_the_slider_data():
    from companion.calibration.mixup import mixup_profile

    plain = mixup_profile(4, 0.5, n_samples=60_000, rng=0)
    within = mixup_profile(4, 0.5, within_pair=True, n_samples=60_000, rng=0)
    assert plain.predictor.shape == plain.posterior.shape == (plain.x.size, 4)
    assert np.allclose(plain.predictor.sum(axis=1), 1.0)
    assert 0 < within.kl < plain.kl, "restricting the mixing to a pair lowers the KL"
    with pytest.raises(ValueError, match="alpha"):
        mixup_profile(4, 0.5, alpha=0.0)
