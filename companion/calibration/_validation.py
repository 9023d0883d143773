"""Input checks shared by the calibration modules. Every failure names the problem."""

from __future__ import annotations

import numpy as np

#: How far a row of a probability matrix may sum from 1 before we call it "not probabilities".
SUM_TOL = 1e-6


def check_probs(probs, *, name: str = "probs") -> np.ndarray:
    """Return ``probs`` as a floating ``(N, k)`` array of probabilities, or raise ``ValueError``.

    float32 and float64 inputs keep their dtype (no copy of a large matrix); anything else is
    converted to float64. Rows must sum to 1 within ``SUM_TOL`` (float64) or ``1e-4`` (float32).
    """
    p = np.asarray(probs)
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    if p.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (N, k), got shape {p.shape}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {p.shape})")
    if p.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 classes (columns), got {p.shape[1]}")
    lo, hi = float(p.min()), float(p.max())  # NaN propagates through min/max: two passes, not three
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf")
    if lo < 0 or hi > 1:
        raise ValueError(
            f"{name} has values outside [0, 1] (min {lo:.4g}, max {hi:.4g}); "
            "were logits passed where probabilities are expected? apply softmax first")
    tol = SUM_TOL if p.dtype == np.float64 else 1e-4
    worst = float(np.abs(p.sum(axis=1, dtype=np.float64) - 1.0).max())
    if worst > tol:
        raise ValueError(f"rows of {name} must sum to 1 (worst row is off by {worst:.3g}); "
                         "were logits or unnormalised scores passed?")
    return p


def check_logits(logits, *, name: str = "logits") -> np.ndarray:
    """Return ``logits`` as a finite float64 ``(N, k)`` array, or raise ``ValueError``."""
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (N, k), got shape {z.shape}")
    if z.shape[0] == 0 or z.shape[1] < 2:
        raise ValueError(f"{name} must have at least one row and two columns, got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contains NaN or inf")
    return z


def check_labels(labels, n_rows: int, n_classes: int, *, name: str = "labels") -> np.ndarray:
    """Return integer labels of shape ``(n_rows,)`` in ``[0, n_classes)``, or raise ``ValueError``."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (N,), got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(f"shape mismatch: {n_rows} rows of predictions but {y.shape[0]} {name}")
    if y.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{name} must be integers, got non-integer floats")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"{name} must lie in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    return y


def check_n_bins(n_bins) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    return int(n_bins)
