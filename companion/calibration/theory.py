"""Closed forms for the warm-up family under temperature scaling (the chapter's proposition).

Setting: :class:`companion.distributions.WarmupOverlap1D` with ``k`` classes and overlap ``rho``,
and an interpolating predictor with *symmetric* logits ``z(x) = M e_{h(x)}``: one winning class
``h(x)`` with margin ``M`` over all others, which tie. Temperature ``T`` turns this into
``q = e^{M/T} / (e^{M/T} + k - 1)`` on ``h(x)`` and ``(1 - q) / (k - 1)`` on each other class.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import entr


def _check(k, overlap) -> tuple[int, np.ndarray]:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    rho = np.asarray(overlap, dtype=np.float64)
    if np.any((rho < 0) | (rho > 1)) or not np.all(np.isfinite(rho)):
        raise ValueError(f"overlap must lie in [0, 1], got {overlap!r}")
    return int(k), rho


def binary_entropy(p) -> np.ndarray:
    """``-p log p - (1 - p) log(1 - p)`` in nats, with ``0 log 0 = 0``."""
    p = np.asarray(p, dtype=np.float64)
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError(f"binary_entropy needs probabilities in [0, 1], got {p!r}")
    return entr(p) + entr(1.0 - p)  # scipy's entr(x) = -x log x, with entr(0) = 0


def kl_lower_bound(k: int, overlap):
    """``(rho / 2) log(k - 1)``: no temperature (not even one per point) goes below it."""
    k, rho = _check(k, overlap)
    return 0.5 * rho * np.log(k - 1)


def oracle_ts_kl(k: int, overlap):
    """Exact oracle-temperature KL for constant margin and ``h(x)`` correct off the overlaps:
    ``H(rho / 2) + (rho / 2) log(k - 1) - rho log 2``, reached at ``q* = 1 - rho / 2``."""
    k, rho = _check(k, overlap)
    return binary_entropy(rho / 2) + 0.5 * rho * np.log(k - 1) - rho * np.log(2)


def oracle_temperature(k: int, overlap: float, margin: float) -> float:
    """The temperature giving ``q* = 1 - rho / 2``: ``T* = M / log((k - 1)(2 - rho) / rho)``
    (``inf`` when the log is 0, i.e. uniform predictions are best; 0 when ``rho = 0``)."""
    k, rho = _check(k, overlap)
    rho = float(rho)
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin!r}")
    if rho == 0:
        return 0.0
    beta = np.log((k - 1) * (2 - rho) / rho)
    return float(margin / beta) if beta > 0 else float("inf")


class NearestNeighbourInterpolator:
    """The simplest interpolator: logits ``M e_{h(x)}`` with ``h(x)`` the label of the nearest
    training point. It fits every training label with margin ``M`` and has symmetric logits, so
    the proposition applies to it exactly.
    """

    def __init__(self, n_classes: int, *, margin: float = 10.0) -> None:
        self.n_classes = n_classes
        self.margin = margin

    def fit(self, x, y) -> "NearestNeighbourInterpolator":
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y)
        if x.ndim != 2 or x.shape[0] == 0 or y.shape != (x.shape[0],):
            raise ValueError(f"need x of shape (N, d) and y of shape (N,), got {x.shape} and {y.shape}")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"y must lie in [0, {self.n_classes})")
        if not self.margin > 0:
            raise ValueError(f"margin must be positive, got {self.margin!r}")
        self.tree_ = cKDTree(x)
        self.labels_ = y.astype(np.int64)
        return self

    def decision_function(self, x) -> np.ndarray:
        """Logits ``(N, k)``: ``margin`` on the nearest neighbour's label, 0 elsewhere."""
        if not hasattr(self, "tree_"):
            raise ValueError("not fitted yet; call fit first")
        _, nn_idx = self.tree_.query(np.asarray(x, dtype=np.float64))
        z = np.zeros((len(nn_idx), self.n_classes))
        z[np.arange(len(nn_idx)), self.labels_[nn_idx]] = self.margin
        return z
