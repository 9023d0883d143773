import numpy as np
import pytest

from companion import intro


def test_posterior_is_half_at_zero_and_monotone():
    x = np.linspace(-3, 3, 61)
    p = intro.two_gaussian_posterior(x, 2.0)
    assert p[30] == pytest.approx(0.5)
    assert np.all(np.diff(p) > 0)


def test_posterior_matches_bayes_rule():
    from scipy.stats import norm
    x, s = np.array([-1.3, 0.2, 2.0]), 1.7
    p1, p0 = norm.pdf(x, s / 2), norm.pdf(x, -s / 2)
    np.testing.assert_allclose(intro.two_gaussian_posterior(x, s), p1 / (p0 + p1))


def test_bayes_error_limits():
    assert intro.bayes_error_two_gaussians(0.0) == pytest.approx(0.5)
    assert intro.bayes_error_two_gaussians(10.0) < 1e-6
    with pytest.raises(ValueError, match="separation"):
        intro.bayes_error_two_gaussians(-1.0)


@pytest.mark.parametrize("c,m", [(1.0, 0.8), (0.3, 2.0), (1.0, 1.0), (0.0, 1.0)])
def test_pipeline_between_bounds_and_tends_to_max(c, m):
    lo, hi = intro.overlap_bounds(c, m)
    assert intro.pipeline_makespan(c, m, 1) == pytest.approx(hi)
    times = [intro.pipeline_makespan(c, m, n) for n in (1, 2, 8, 64)]
    assert all(lo - 1e-12 <= t <= hi + 1e-12 for t in times)
    assert all(a >= b - 1e-12 for a, b in zip(times, times[1:]))
    assert times[-1] == pytest.approx(lo, abs=(c + m) / 64 + 1e-12)


def test_pipeline_rejects_bad_input():
    with pytest.raises(ValueError, match="n_chunks"):
        intro.pipeline_schedule(1.0, 1.0, 0)
    with pytest.raises(ValueError, match="comm_s"):
        intro.overlap_bounds(1.0, -1.0)


def test_polyphony_counts_simultaneous_events():
    counts = intro.polyphony([0.0, 0.5, 0.6], [1.0, 2.0, 0.7], [0.25, 0.65, 0.9, 1.5, 2.5])
    assert counts.tolist() == [1, 3, 2, 1, 0]
    with pytest.raises(ValueError, match="offset"):
        intro.polyphony([1.0], [0.5], [0.0])
