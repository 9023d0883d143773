"""Mixup (Zhang et al., 2018) and its d-point Dirichlet variant, plus the Mixup-optimal predictor.

Mixing ``m`` points with weights ``w ~ Dirichlet(alpha, ..., alpha)`` (``m = 2`` is Mixup with
``lambda ~ Beta(alpha, alpha)``; ``m = d + 1`` is the paper's d-Mixup) trains on the input
``sum_i w_i x_{perm_i}`` with the soft target ``sum_i w_i e_{y_{perm_i}}``. As in the paper's code,
one weight vector is drawn per batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.calibration.metrics import expected_kl
from companion.seeding import as_generator


def check_mixup_params(alpha: float, mix_size: int) -> None:
    if not (np.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be a positive float, got {alpha!r}")
    if isinstance(mix_size, bool) or not isinstance(mix_size, (int, np.integer)) or mix_size < 2:
        raise ValueError(f"mix_size must be an integer >= 2 (points per mixture), got {mix_size!r}")


def group_permutation(groups: np.ndarray, rng) -> np.ndarray:
    """A random permutation of ``range(len(groups))`` that maps every index to one of its own group.

    ``groups`` ``(B,)`` holds integer group ids; within each group the indices are shuffled.
    """
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.dtype.kind not in "iu":
        raise ValueError(f"groups must be a 1-D array of integer group ids, got {groups.dtype} "
                         f"of shape {groups.shape}")
    rng = as_generator(rng)
    perm = np.arange(groups.size)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        perm[members] = rng.permutation(members)
    return perm


def mix_batch(x: np.ndarray, y_onehot: np.ndarray, *, alpha: float, mix_size: int,
              rng, groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mix a batch (NumPy arrays or torch tensors): ``x`` ``(B, d)``, one-hot ``y_onehot`` ``(B, k)`` -> mixed ``(B, d)``, ``(B, k)``.

    ``perm_0`` is the identity, the other ``mix_size - 1`` are random permutations of the batch;
    with ``groups`` ``(B,)`` (integer ids) each permutation stays within groups, so every mixture
    is made of points of one group (the chapter's within-pair d-Mixup with ``groups = y // 2``).
    """
    check_mixup_params(alpha, mix_size)
    rng = as_generator(rng)
    if groups is not None and len(groups) != x.shape[0]:
        raise ValueError(f"groups must have one id per point of the batch ({x.shape[0]}), got {len(groups)}")
    w = rng.dirichlet(np.full(mix_size, float(alpha)))
    if groups is None:
        perms = [np.arange(x.shape[0])] + [rng.permutation(x.shape[0]) for _ in range(mix_size - 1)]
    else:
        perms = [np.arange(x.shape[0])] + [group_permutation(groups, rng) for _ in range(mix_size - 1)]
    # float(w_i): works for NumPy arrays and torch tensors alike
    xm = sum(float(wi) * x[p] for wi, p in zip(w, perms))
    ym = sum(float(wi) * y_onehot[p] for wi, p in zip(w, perms))
    return xm, ym


def _same_pair_samples(dist, n: int, pairs: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """First coordinates and labels of ``n`` points of the warm-up family, point ``i`` drawn from
    pair ``pairs[i]`` (each of its two classes equally likely, uniform on the class interval)."""
    lows = np.array([dist.class_interval(c)[0] for c in range(dist.n_classes)])
    y = 2 * pairs + rng.integers(0, 2, size=n)
    return lows[y] + rng.random(n), y


def mixup_optimal_predictor(dist, edges: np.ndarray, *, alpha: float = 1.0, mix_size: int = 2,
                            n_samples: int = 2_000_000, rng=0,
                            within_pair: bool = False, fill_empty: bool = False) -> np.ndarray:
    """Mixup-optimal prediction along the first coordinate of a known distribution.

    The Mixup loss is a cross-entropy against soft targets, so its pointwise minimiser at a mixed
    input ``z`` is the conditional mean of the soft target, ``E[sum_i w_i e_{y_i} | mixed x = z]``.
    We estimate it by Monte Carlo: draw ``n_samples`` mixtures of ``mix_size`` i.i.d. points of
    ``dist`` (which must have ``sample(n, rng)`` and ``n_classes``), keep the first coordinate, and
    average the soft targets over the bins given by ``edges`` ``(B + 1,)``.

    ``within_pair=True`` is the chapter's restricted d-Mixup (ours): all ``mix_size`` points of a
    mixture come from the same pair of the warm-up family (``dist`` must then be a
    :class:`~companion.distributions.WarmupOverlap1D`). With the family's spacing of at least 4
    this is the same as mixing only points less than 2 apart, a rule that needs no labels.

    Returns ``(B, k)``; rows of bins that no mixture reached are NaN, or, with
    ``fill_empty=True``, copied from the nearest reached bin (mixtures rarely reach the far ends
    of the support, where the optimum is continuous and nearly one-hot). Exact for 1-D distributions
    up to Monte Carlo and binning error; for ``d > 1`` it is the predictor averaged over the other
    coordinates.
    """
    check_mixup_params(alpha, mix_size)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a strictly increasing 1-D array with at least 2 entries")
    rng = as_generator(rng)
    k = dist.n_classes
    w = rng.dirichlet(np.full(mix_size, float(alpha)), size=n_samples)  # one weight per mixture here
    z = np.zeros(n_samples)
    target = np.zeros((n_samples, k))
    pairs = rng.integers(0, k // 2, size=n_samples) if within_pair else None
    for i in range(mix_size):
        if within_pair:
            x0, y = _same_pair_samples(dist, n_samples, pairs, rng)
        else:
            x, y = dist.sample(n_samples, rng)
            x0 = x[:, 0]
        z += w[:, i] * x0
        target[np.arange(n_samples), y] += w[:, i]
    idx = np.searchsorted(edges, z, side="right") - 1
    inside = (idx >= 0) & (idx < edges.size - 1)
    idx, target = idx[inside], target[inside]
    nb = edges.size - 1
    count = np.bincount(idx, minlength=nb).astype(np.float64)
    out = np.stack([np.bincount(idx, weights=target[:, c], minlength=nb) for c in range(k)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = out / count[:, None]
        # each soft target sums to 1 up to rounding; renormalise so rows are distributions
        table = table / table.sum(axis=1, keepdims=True)
    if fill_empty and np.any(count > 0):
        reached = np.flatnonzero(count > 0)
        pos = np.clip(np.searchsorted(reached, np.arange(nb)), 1, max(len(reached) - 1, 1))
        left, right = reached[pos - 1], reached[np.minimum(pos, len(reached) - 1)]
        nearest = np.where(np.arange(nb) - left <= right - np.arange(nb), left, right)
        table = table[nearest]
    return table


def binned_predictor_kl(dist, edges: np.ndarray, table: np.ndarray, *, n: int, rng) -> float:
    """Expected KL from ``dist``'s posterior of the predictor that answers ``table[b]`` ``(B, k)``
    for every point whose first coordinate falls in bin ``b`` of ``edges`` ``(B + 1,)``; estimated
    on ``n`` fresh points. Every point must fall in a bin whose row of ``table`` is a distribution."""
    edges = np.asarray(edges, dtype=np.float64)
    table = np.asarray(table, dtype=np.float64)
    if table.shape != (edges.size - 1, dist.n_classes):
        raise ValueError(f"table must have shape ({edges.size - 1}, {dist.n_classes}), got {table.shape}")
    x, _ = dist.sample(n, as_generator(rng))
    idx = np.searchsorted(edges, x[:, 0], side="right") - 1
    if np.any((idx < 0) | (idx >= edges.size - 1)):
        raise ValueError("some points fall outside edges; widen them to cover the support")
    return expected_kl(dist.posterior(x), table[idx])


@dataclass(frozen=True)
class MixupProfile:
    """The (d-)Mixup optimum of the 1-D warm-up family on a grid of bin centres ``x`` ``(B,)``:
    ``posterior`` and ``predictor`` ``(B, k)`` (posterior NaN off the support) and the
    optimum's expected ``kl`` from the posterior, in nats."""

    x: np.ndarray
    posterior: np.ndarray
    predictor: np.ndarray
    kl: float


def mixup_profile(k: int, rho: float, *, alpha: float = 1.0, mix_size: int = 2,
                  within_pair: bool = False, n_samples: int = 200_000, rng=0) -> MixupProfile:
    """Everything the chapter's Mixup slider draws, for one setting of its knobs.

    ``alpha`` is the Dirichlet concentration, ``mix_size`` the points per mixture (``d + 1``),
    ``within_pair`` restricts mixing to one pair (the chapter's restricted d-Mixup).
    """
    from companion.distributions import WarmupOverlap1D

    dist = WarmupOverlap1D(k, rho)
    edges = np.arange(-0.1, (k // 2 - 1) * dist.spacing + 2.11, 0.01)
    g = as_generator(rng)
    table = mixup_optimal_predictor(dist, edges, alpha=alpha, mix_size=mix_size,
                                    n_samples=n_samples, rng=g, within_pair=within_pair,
                                    fill_empty=True)
    x = 0.5 * (edges[1:] + edges[:-1])
    on_support = np.zeros(x.size, dtype=bool)
    for c in range(k):
        lo, hi = dist.class_interval(c)
        on_support |= (x >= lo) & (x <= hi)
    post = np.full((x.size, k), np.nan)
    post[on_support] = dist.posterior(x[on_support][:, None])
    kl = binned_predictor_kl(dist, edges, table, n=100_000, rng=g)
    return MixupProfile(x=x, posterior=post, predictor=table, kl=kl)
