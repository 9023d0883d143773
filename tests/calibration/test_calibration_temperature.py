"""Temperature scaling: reaches the grid minimum where the LBFGS recipe stops short; the oracle;
the warm-up proposition's closed forms."""

import numpy as np
import pytest
from scipy.special import softmax

from companion.calibration import OracleTemperatureScaler, TemperatureScaler, expected_kl, nll
from companion.calibration.temperature import lbfgs_recipe_temperature, nll_at_temperature
from companion.calibration.theory import (NearestNeighbourInterpolator, kl_lower_bound, oracle_temperature,
                                          oracle_ts_kl)
from companion.distributions import WarmupOverlap1D


def overconfident_logits(n=1000, k=5, scale=12.0, seed=0):
    """Labels from softmax(z), logits handed over multiplied by ``scale``: the best T is ~scale."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k))
    y = (softmax(z, axis=1).cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return scale * z, y


def grid_minimum(z, y, lo=-6.0, hi=9.0):
    """Brute force over log T: a coarse grid over the whole range, then a fine one (step 1e-4)
    around the coarse winner."""
    onehot = np.eye(z.shape[1])[y]
    best = lo
    for grid in (np.linspace(lo, hi, 301), None):
        if grid is None:
            grid = np.linspace(best - 0.05, best + 0.05, 1001)
        losses = [nll_at_temperature(z, onehot, np.exp(s)) for s in grid]
        best = float(grid[int(np.argmin(losses))])
    return float(np.exp(best)), float(min(losses))


def test_fit_reaches_grid_minimum_where_lbfgs_recipe_stops_early():
    z, y = overconfident_logits()
    ts = TemperatureScaler().fit(z, y)
    t_grid, nll_grid = grid_minimum(z, y)
    assert ts.temperature_ == pytest.approx(t_grid, rel=1e-3)
    assert ts.nll_ <= nll_grid + 1e-9
    t_recipe = lbfgs_recipe_temperature(z, y)
    onehot = np.eye(z.shape[1])[y]
    # the recipe (lr 0.01, 20 iterations from T = 1) ends far from the optimum and far above its NLL
    assert abs(np.log(t_recipe) - np.log(ts.temperature_)) > 1.0
    assert nll_at_temperature(z, onehot, t_recipe) > ts.nll_ + 0.5


def test_predict_proba_and_fitted_check():
    z, y = overconfident_logits(n=500, k=3)
    ts = TemperatureScaler()
    with pytest.raises(ValueError, match="not fitted"):
        ts.predict_proba(z)
    p = ts.fit(z, y).predict_proba(z)
    assert np.allclose(p, softmax(z / ts.temperature_, axis=1))
    assert nll(p, y) == pytest.approx(ts.nll_)
    with pytest.raises(ValueError, match="3 classes"):
        ts.predict_proba(z[:, :2])


@pytest.mark.parametrize("logits,labels,match", [
    (np.array([[1.0, np.nan]]), [0], "NaN or inf"),
    (np.array([1.0, 2.0]), [0], "2-D"),
    (np.array([[1.0, 2.0]]), [0, 1], "shape mismatch"),
    (np.array([[1.0, 2.0]]), [3], r"\[0, 2\)"),
    (np.zeros((0, 2)), np.zeros(0, dtype=int), "at least one row"),
])
def test_temperature_bad_input(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        TemperatureScaler().fit(logits, labels)


def test_all_wrong_labels_push_temperature_to_upper_bound():
    z = np.array([[5.0, 0.0]] * 50)
    ts = TemperatureScaler().fit(z, np.ones(50, dtype=int))
    assert ts.at_bound_ and ts.temperature_ > 1000


@pytest.mark.parametrize("k,rho", [(2, 0.5), (4, 0.3), (8, 0.8), (16, 1.0), (32, 0.5)])
def test_oracle_ts_on_nearest_neighbour_interpolator_matches_closed_form(k, rho):
    dist = WarmupOverlap1D(k, rho)
    x_tr, y_tr = dist.sample(20000, 1)
    x_te, _ = dist.sample(20000, 2)
    model = NearestNeighbourInterpolator(k, margin=10.0).fit(x_tr, y_tr)
    z, post = model.decision_function(x_te), dist.posterior(x_te)
    oracle = OracleTemperatureScaler().fit(z, post)
    kl = expected_kl(post, oracle.predict_proba(z))
    assert kl == pytest.approx(oracle.kl_, abs=1e-9)
    # nearest-neighbour labels are wrong on a thin sliver near each overlap's edges, which only
    # adds KL: the closed form is approached from above, and the bound always holds
    assert kl >= kl_lower_bound(k, rho) - 1e-9
    assert kl == pytest.approx(float(oracle_ts_kl(k, rho)), abs=0.03)


def test_theory_closed_forms():
    assert float(oracle_ts_kl(2, 1.0)) == pytest.approx(0.0, abs=1e-12)  # k=2, full overlap: uniform is exact
    assert float(oracle_ts_kl(16, 1.0)) == pytest.approx(0.5 * np.log(15))
    rho = np.linspace(0, 1, 11)
    for k in (2, 4, 8, 16, 32):
        gap = oracle_ts_kl(k, rho) - kl_lower_bound(k, rho)
        assert np.all(gap >= -1e-12) and np.all(gap <= np.log(2) + 1e-12)
    # at the oracle temperature the top class gets 1 - rho / 2
    t = oracle_temperature(8, 0.4, 10.0)
    q = np.exp(10.0 / t) / (np.exp(10.0 / t) + 7)
    assert q == pytest.approx(0.8)
    with pytest.raises(ValueError, match="overlap"):
        oracle_ts_kl(4, 1.5)


def test_oracle_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        OracleTemperatureScaler().fit(np.zeros((3, 2)), np.full((3, 3), 1 / 3))
