"""Distributions with overlapping class supports and a closed-form Bayes posterior.

Three families, each with ``sample(n, rng) -> (x, y)`` and ``posterior(x) -> (n, k)``:

- :class:`WarmupOverlap1D` -- the chapter's 1-D warm-up family: ``k`` classes in ``k/2``
  pairs; the two classes of a pair are uniform on unit intervals that overlap on a fraction
  ``overlap`` of their length (the setting of Chidambaram & Ge, ICLR 2024, Section 4).
- :class:`WarmupOverlapND` -- the same pairs along the first axis of ``[.] x [0, 1]^(d-1)``.
- :class:`TwoGaussians` -- the paper's synthetic experiment: two unit-variance Gaussian
  classes in ``d`` dimensions with means ``0`` and ``mu * 1``.

Classes are equally likely in every family. Inputs ``x`` are float64 arrays of shape
``(n, d)`` (``d = 1`` for the 1-D family); labels ``y`` are int64 of shape ``(n,)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from companion.seeding import as_generator


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of samples, got {n!r}")
    return int(n)


def _as_inputs(x, dim: int) -> np.ndarray:
    """Coerce ``x`` to a finite float array of shape ``(n, dim)``; a 1-D array is read as ``(n, 1)``
    when ``dim == 1``."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1 and dim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"x must have shape (n, {dim}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("x is empty: pass at least one point")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or inf")
    return x


class WarmupOverlap1D:
    """``k`` classes on the line in ``k/2`` overlapping pairs.

    Pair ``j`` starts at ``c_j = j * spacing``. Its even class ``2j`` is uniform on
    ``[c_j, c_j + 1]`` and its odd class ``2j + 1`` on ``[c_j + 1 - overlap, c_j + 2 - overlap]``,
    so the two share an interval of length ``overlap``. Inside it the Bayes posterior is
    ``(1/2, 1/2)`` on the pair; everywhere else it is one-hot. A point falls in an overlap
    with probability ``overlap``.

    Parameters
    ----------
    k : int
        Number of classes, even, at least 2.
    overlap : float in [0, 1]
        Length of the shared interval of each pair (0: separable; 1: the pair coincides).
    spacing : float, optional
        Distance between the starts of consecutive pairs; at least 2 so pairs never touch.
        Defaults to ``max(k, 2)``, the paper's spacing of ``k`` (it only simplifies the Mixup
        analysis).
    """

    dim = 1

    def __init__(self, k: int, overlap: float, *, spacing: float | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2 or k % 2:
            raise ValueError(f"k must be an even integer >= 2 (classes come in pairs), got {k!r}")
        if not (0.0 <= float(overlap) <= 1.0):
            raise ValueError(f"overlap must lie in [0, 1], got {overlap!r}")
        spacing = float(max(k, 2)) if spacing is None else float(spacing)
        if not spacing >= 2.0:
            raise ValueError(f"spacing must be >= 2 so that pairs do not touch, got {spacing!r}")
        self.k = int(k)
        self.overlap = float(overlap)
        self.spacing = spacing

    @property
    def n_classes(self) -> int:
        return self.k

    def _lows(self, y: np.ndarray) -> np.ndarray:
        """Left end of the support of class ``y``, shape like ``y``."""
        pair, odd = np.divmod(y, 2)
        return pair * self.spacing + odd * (1.0 - self.overlap)

    def class_interval(self, c: int) -> tuple[float, float]:
        """Support ``(low, high)`` of class ``c`` along the first axis."""
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < self.k:
            raise ValueError(f"class must be an integer in [0, {self.k}), got {c!r}")
        lo = float(self._lows(np.array(c)))
        return lo, lo + 1.0

    def _sample_first_axis(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, self.k, size=n)
        t = self._lows(y) + rng.random(n)
        return t, y.astype(np.int64)

    def sample(self, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` i.i.d. points: ``x`` of shape ``(n, 1)``, ``y`` of shape ``(n,)``."""
        t, y = self._sample_first_axis(_check_n(n), as_generator(rng))
        return t[:, None], y

    def _posterior_first_axis(self, t: np.ndarray) -> np.ndarray:
        dens = np.zeros((t.shape[0], self.k))
        for c in range(self.k):
            lo = self._lows(np.array(c))
            dens[:, c] = (t >= lo) & (t <= lo + 1.0)
        total = dens.sum(axis=1, keepdims=True)
        if np.any(total == 0):
            bad = t[total[:, 0] == 0][:3]
            raise ValueError(f"points outside the support of every class (first coordinates {bad}); "
                             "the posterior is undefined there")
        return dens / total

    def posterior(self, x) -> np.ndarray:
        """Bayes posterior ``pi(y | x)`` of shape ``(n, k)`` for points ``x`` of shape ``(n, 1)``."""
        return self._posterior_first_axis(_as_inputs(x, 1)[:, 0])

    def in_overlap(self, x) -> np.ndarray:
        """Boolean mask ``(n,)``: True where two classes share the point."""
        return self.posterior(x).max(axis=1) < 1.0


class WarmupOverlapND(WarmupOverlap1D):
    """The warm-up pairs along the first axis, times a uniform cube ``[0, 1]^(dim - 1)``.

    The extra coordinates carry no information about the label, so the posterior is that of
    :class:`WarmupOverlap1D` at the first coordinate. Points outside the cube are outside the support.
    """

    def __init__(self, k: int, overlap: float, dim: int, *, spacing: float | None = None) -> None:
        super().__init__(k, overlap, spacing=spacing)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    def sample(self, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` points: ``x`` of shape ``(n, dim)``, ``y`` of shape ``(n,)``."""
        n, rng = _check_n(n), as_generator(rng)
        t, y = self._sample_first_axis(n, rng)
        rest = rng.random((n, self.dim - 1))
        return np.concatenate([t[:, None], rest], axis=1), y

    def posterior(self, x) -> np.ndarray:
        """Bayes posterior of shape ``(n, k)`` for ``x`` of shape ``(n, dim)``."""
        x = _as_inputs(x, self.dim)
        rest = x[:, 1:]
        if np.any((rest < 0) | (rest > 1)):
            raise ValueError("points outside [0, 1] in coordinates 2..dim are outside the support")
        return self._posterior_first_axis(x[:, 0])


class TwoGaussians:
    """Two equally likely classes ``N(0, I_d)`` and ``N(mu * 1, I_d)`` (the paper's synthetic data).

    The posterior of class 1 is ``sigmoid(mu * sum(x) - mu^2 d / 2)``; the classes overlap more
    as ``mu`` shrinks, and the Bayes error is ``Phi(-mu sqrt(d) / 2)``.

    Parameters
    ----------
    dim : int
        Dimension ``d`` (the paper uses 300, images of shape 3 x 10 x 10).
    mu : float > 0
        Per-coordinate mean of class 1.
    """

    k = 2
    n_classes = 2

    def __init__(self, dim: int, mu: float) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not (np.isfinite(mu) and mu > 0):
            raise ValueError(f"mu must be a positive finite float, got {mu!r}")
        self.dim = int(dim)
        self.mu = float(mu)

    def sample(self, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` points: ``x`` of shape ``(n, dim)``, ``y`` of shape ``(n,)``."""
        n, rng = _check_n(n), as_generator(rng)
        y = rng.integers(0, 2, size=n).astype(np.int64)
        x = rng.standard_normal((n, self.dim)) + self.mu * y[:, None]
        return x, y

    def posterior(self, x) -> np.ndarray:
        """Bayes posterior of shape ``(n, 2)``."""
        x = _as_inputs(x, self.dim)
        p1 = expit(self.mu * x.sum(axis=1) - 0.5 * self.mu**2 * self.dim)
        return np.stack([1.0 - p1, p1], axis=1)

    def bayes_error(self) -> float:
        """Error rate of the Bayes classifier, ``Phi(-mu sqrt(d) / 2)``."""
        from scipy.stats import norm

        return float(norm.cdf(-0.5 * self.mu * np.sqrt(self.dim)))
