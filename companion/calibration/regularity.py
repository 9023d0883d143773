"""The regularity condition of the chapter's general lower bound, and how to measure it.

The chapter's theorem (our statement, in the spirit of Chidambaram & Ge, 2024) bounds the KL left
by *any* temperature from two logit statistics at each point ``x``:

- the top-label *gap* ``Delta(x) = z_top(x) - max_{c != top} z_c(x)``;
- the *j-spread* ``D_j(x) = z_top(x) - z_(j+1)(x)``, the distance from the top logit to the
  ``j``-th runner-up (``j = k - 1``: the range, top minus smallest).

On the set ``A`` where ``Delta(x) >= Delta`` and ``D_j(x) <= kappa * Delta``, temperature ``T``
(with ``s = Delta / T``) leaves at least :func:`overlap_floor` nats on a pair overlap and
:func:`pure_floor` nats where the posterior is one-hot. Functions here compute
those statistics from logits, the resulting bound, and the gap of a network on spheres around its
training points (the quantity the local regularity condition controls).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from companion.calibration._validation import check_logits
from companion.seeding import as_generator


def gap_and_range(logits) -> tuple[np.ndarray, np.ndarray]:
    """Top-label gap ``z_(1) - z_(2)`` and range ``z_(1) - z_(k)`` of each row, both ``(N,)``."""
    z = np.sort(check_logits(logits), axis=1)
    return z[:, -1] - z[:, -2], z[:, -1] - z[:, 0]


def gap_and_spread(logits, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-label gap and ``j``-spread ``D_j = z_(1) - z_(j+1)`` (the distance from the top logit
    to the ``j``-th runner-up; ``j = k - 1`` is the range), both ``(N,)``."""
    z = np.sort(check_logits(logits), axis=1)
    k = z.shape[1]
    _check_j(j, k)
    return z[:, -1] - z[:, -2], z[:, -1] - z[:, k - 1 - j]


def _check_j(j, k: int) -> int:
    if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 1 <= j <= k - 1:
        raise ValueError(f"j counts runner-up classes and must be an integer in [1, k - 1] = "
                         f"[1, {k - 1}], got {j!r}")
    return int(j)


def _check_bound_args(a: float, b: float, k: int, kappa: float) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    for name, v in (("a", a), ("b", b)):
        if not (np.isfinite(v) and 0.0 <= v <= 1.0):
            raise ValueError(f"{name} is a probability mass and must lie in [0, 1], got {v!r}")
    if a + b > 1.0 + 1e-12:
        raise ValueError(f"a + b is a probability mass, at most 1; got {a} + {b} = {a + b}")
    if not (np.isfinite(kappa) and kappa >= 1.0):
        raise ValueError(f"kappa = spread / gap is at least 1, got {kappa!r}")


def overlap_floor(s, j: int, kappa: float):
    """KL floor at a regular point of a pair overlap, as a function of ``s = Delta / T``:
    ``max(0, min{s/2 + log(1 + e^{-s} + (j-1) e^{-kappa s}), s + log(1 + j e^{-kappa s})}
    - log 2)`` (first expression: the top class is one of the pair; second: it is neither)."""
    s = np.asarray(s, dtype=np.float64)
    log_j1 = np.log(j - 1.0) if j > 1 else -np.inf
    one = s / 2 + np.logaddexp(np.logaddexp(0.0, -s), log_j1 - kappa * s)
    two = s + np.logaddexp(0.0, np.log(float(j)) - kappa * s)
    # KL is never negative; the second expression can be, for small s and large kappa
    return np.maximum(0.0, np.minimum(one, two) - np.log(2.0))


def pure_floor(s, j: int, kappa: float):
    """KL floor at a regular point with a one-hot posterior: ``log(1 + j e^{-kappa s})``."""
    s = np.asarray(s, dtype=np.float64)
    return np.logaddexp(0.0, np.log(float(j)) - kappa * s)


def ts_bound_at(s, a: float, b: float, j: int, kappa: float, j_pure: int | None = None):
    """``a * overlap_floor(s) + b * pure_floor(s)``: the KL floor at ``s = Delta / T``
    (``j_pure``, default ``j``: the spread index used off the overlaps).

    ``a`` is the mass of regular overlap points, ``b`` that of regular points with a one-hot
    posterior (the theorem's ``P(A ∩ O)`` and ``P(A \\ O)``)."""
    return a * overlap_floor(s, j, kappa) + b * pure_floor(s, j if j_pure is None else j_pure,
                                                            kappa)


def oracle_ts_lower_bound(a: float, b: float, k: int, kappa: float = 1.0, *,
                          j: int | None = None, j_pure: int | None = None) -> float:
    """A certified lower bound on ``inf_{s > 0}`` of :func:`ts_bound_at` (so on the KL of every
    temperature, by the theorem); ``j`` defaults to ``k - 1`` (``kappa`` then bounds the range).

    The infimum over ``[0, S]`` is bounded cell by cell on a grid: on a cell of width ``h`` the
    function is at least its smaller end value minus ``h (1 + kappa) / 2`` (``|d/ds| <= 1 +
    kappa`` for both floors), and cells that could hold the minimum are refined; so the
    result is never above the true infimum; past ``S`` the overlap floor exceeds
    ``S/2 - log 2`` and the pure floor is positive.

    >>> round(oracle_ts_lower_bound(0.5, 0.5, 32), 3)
    1.074
    """
    _check_bound_args(a, b, k, kappa)
    j = k - 1 if j is None else _check_j(j, k)
    j_pure = j if j_pure is None else _check_j(j_pure, k)
    big = 4.0 * np.log(k) + 40.0
    slope = 1.0 + kappa
    # 1. coarse grid: on each cell the function is at least min(end values) - step * slope / 2
    grid, step = np.linspace(0.0, big, 2_001, retstep=True)
    f = ts_bound_at(grid, a, b, j, kappa, j_pure)
    cell_floor = np.minimum(f[:-1], f[1:]) - 0.5 * step * slope
    # 2. refine the cells whose floor could undercut the coarse minimum, 200 points each
    cand = np.flatnonzero(cell_floor < f.min())
    fine_step = step / 199
    fine = grid[cand][:, None] + fine_step * np.arange(200)[None, :]
    refined = np.min(ts_bound_at(fine, a, b, j, kappa, j_pure)) - 0.5 * fine_step * slope
    others = np.delete(cell_floor, cand)
    inside = min(float(refined), float(others.min()) if others.size else np.inf)
    beyond = a * (big / 2 - np.log(2.0))
    return float(max(0.0, min(inside, beyond)))


def linear_lower_bound(a: float, k: int, kappa: float = 1.0) -> float:
    """The theorem's readable corollary for ``k >= 3`` (with ``j = k - 1``):
    ``a (log(k - 2) / (2 kappa) - log 2)``, from the overlap points alone.

    >>> round(linear_lower_bound(0.5, 32), 3)
    0.504
    """
    _check_bound_args(a, 0.0, k, kappa)
    if k < 3:
        raise ValueError(f"the corollary needs k >= 3 (log(k - 2)); got k={k}; "
                         "use oracle_ts_lower_bound for k = 2")
    return float(a * (np.log(k - 2.0) / (2.0 * kappa) - np.log(2.0)))


def regular_masses(logits, in_overlap, delta: float, kappa: float, *,
                   j: int | None = None) -> tuple[float, float]:
    """Fractions of the rows that are regular (gap >= ``delta``, ``j``-spread <=
    ``kappa * delta``) and lie on an overlap, and that are regular and off it: the ``(a, b)``."""
    k = check_logits(logits).shape[1]
    gap, spread = gap_and_spread(logits, k - 1 if j is None else j)
    over = np.asarray(in_overlap, dtype=bool)
    if over.shape != gap.shape:
        raise ValueError(f"in_overlap must have shape {gap.shape}, got {over.shape}")
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be a positive gap in logit units, got {delta!r}")
    regular = (gap >= delta) & (spread <= kappa * delta)
    return float(np.mean(regular & over)), float(np.mean(regular & ~over))


def best_measured_bound(logits, in_overlap, k: int, *, n_grid: int = 10) -> dict:
    """The (nearly) largest bound that a network's own logits certify, over a grid.

    Steps 2 and 3 of the theorem's proof use, at an overlap point, only ``gap >= delta`` and
    ``D_j <= kappa * delta``, and at a one-hot point only ``D_jp <= kappa * delta``; so
    ``a = P(O, gap >= delta, D_j <= kappa delta)`` and ``b = P(not O, D_jp <= kappa delta)``
    give a valid bound for every ``(j, jp, delta, kappa)`` (``j = 1`` needs the gap alone).
    The winner is picked by a quick uncertified grid minimum and then certified with
    :func:`oracle_ts_lower_bound`, so the returned ``bound`` is valid.
    Returns ``bound``, ``j``, ``j_pure``, ``delta``, ``kappa``, ``a``, ``b``.
    """
    z = np.sort(check_logits(logits), axis=1)
    if z.shape[1] != k:
        raise ValueError(f"logits have {z.shape[1]} columns, expected k={k}")
    over = np.asarray(in_overlap, dtype=bool)
    if over.shape != (z.shape[0],):
        raise ValueError(f"in_overlap must have shape ({z.shape[0]},), got {over.shape}")
    gap = z[:, -1] - z[:, -2]
    spread = {j: z[:, -1] - z[:, k - 1 - j] for j in range(1, k)}
    pos = gap > 0
    deltas = np.quantile(gap[pos], np.linspace(0.02, 0.9, n_grid)) if np.any(pos) else []
    kappas = np.unique(np.concatenate([[1.0], np.geomspace(1.05, 40.0, n_grid + 2)]))
    coarse = np.linspace(0.0, 4.0 * np.log(k) + 40.0, 401)
    best, best_value = None, -np.inf
    for delta in deltas:
        for kappa in kappas:
            cap = kappa * delta
            a_j = {j: float(np.mean(over & (gap >= delta) & (spread[j] <= cap)))
                   for j in range(1, k)}
            b_j = {j: float(np.mean(~over & (spread[j] <= cap))) for j in range(1, k)}
            for j in range(1, k):
                for jp in range(1, k):
                    value = float(np.min(ts_bound_at(coarse, a_j[j], b_j[jp], j, kappa, jp)))
                    if value > best_value:
                        best_value = value
                        best = {"j": j, "j_pure": jp, "delta": float(delta),
                                "kappa": float(kappa), "a": a_j[j], "b": b_j[jp]}
    if best is None:
        return {"bound": 0.0, "j": 0, "j_pure": 0, "delta": float("nan"),
                "kappa": float("nan"), "a": 0.0, "b": 0.0}
    bound = oracle_ts_lower_bound(best["a"], best["b"], k, best["kappa"], j=best["j"],
                                  j_pure=best["j_pure"])
    return {"bound": bound, **best}


@dataclass(frozen=True)
class GapProfile:
    """Logit statistics on spheres of radius ``radius[j]`` around training points.

    ``gap_mean``/``gap_q10`` (each ``(R,)``): mean and 10 % quantile of ``z_y - max_{c != y} z_c``
    for the training label ``y`` (negative: the label no longer wins); ``range_mean``: mean range;
    ``drift_max``: the largest ``|z_c(x) - z_c(x_i)|`` seen, over ``c`` and sampled ``x``, divided
    by the radius (an empirical local Lipschitz constant); ``frac_label_wins``: how often ``y``
    is still the top class.
    """

    radius: np.ndarray
    gap_mean: np.ndarray
    gap_q10: np.ndarray
    range_mean: np.ndarray
    drift_max: np.ndarray
    frac_label_wins: np.ndarray


def gap_profile(decision_function, x_train, y_train, radii, *, n_dirs: int = 8,
                rng=0) -> GapProfile:
    """Probe a trained model's logits on spheres around its training points.

    For each radius ``r`` and each training point, ``n_dirs`` points ``x_i + r u`` with ``u``
    uniform on the unit sphere (as in the paper code's regularity analysis). ``decision_function``
    maps ``(M, d)`` inputs to ``(M, k)`` logits.
    """
    x_train = np.asarray(x_train, dtype=np.float64)
    y_train = np.asarray(y_train)
    radii = np.asarray(radii, dtype=np.float64)
    if x_train.ndim != 2 or y_train.shape != (x_train.shape[0],):
        raise ValueError(f"need x_train (N, d) and y_train (N,), got {x_train.shape}, {y_train.shape}")
    if radii.ndim != 1 or np.any(radii < 0) or not np.all(np.isfinite(radii)):
        raise ValueError(f"radii must be a 1-D array of non-negative radii, got {radii!r}")
    if isinstance(n_dirs, bool) or not isinstance(n_dirs, (int, np.integer)) or n_dirs < 1:
        raise ValueError(f"n_dirs must be a positive integer, got {n_dirs!r}")
    g = as_generator(rng)
    n, d = x_train.shape
    z0 = np.asarray(decision_function(x_train), dtype=np.float64)
    rows = np.repeat(np.arange(n), n_dirs)
    u = g.standard_normal((n * n_dirs, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    out = {key: [] for key in ("gap_mean", "gap_q10", "range_mean", "drift_max", "frac_label_wins")}
    for r in radii:
        z = np.asarray(decision_function(x_train[rows] + r * u), dtype=np.float64)
        y = y_train[rows]
        own = z[np.arange(len(y)), y]
        others = z.copy()
        others[np.arange(len(y)), y] = -np.inf
        gap = own - others.max(axis=1)
        out["gap_mean"].append(float(gap.mean()))
        out["gap_q10"].append(float(np.quantile(gap, 0.1)))
        out["range_mean"].append(float((z.max(axis=1) - z.min(axis=1)).mean()))
        drift = np.abs(z - z0[rows]).max()
        out["drift_max"].append(float(drift / r) if r > 0 else 0.0)
        out["frac_label_wins"].append(float(np.mean(gap > 0)))
    return GapProfile(radius=radii, **{key: np.array(v) for key, v in out.items()})
