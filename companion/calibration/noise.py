"""Label-noise corruption, applied to training labels only (the test set stays clean)."""

from __future__ import annotations

import numpy as np

from companion.seeding import as_generator


def _check(y, n_classes: int, rate: float) -> np.ndarray:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    if not (0.0 <= float(rate) <= 1.0):
        raise ValueError(f"noise rate must lie in [0, 1], got {rate!r}")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "iu":
        raise ValueError(f"labels must be a non-empty 1-D integer array, got shape {y.shape}, dtype {y.dtype}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def pair_flip_noise(y, n_classes: int, rate: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """The paper's noise: each class ``c`` gets one fixed random other class ``mapping[c]``; each
    label is replaced by ``mapping[y]`` with probability ``rate``.

    Returns ``(noisy_labels (N,), mapping (n_classes,))``. At ``rate = 0.5`` a class is as likely
    to carry its partner's label as its own, which makes the pair overlap completely.
    """
    y = _check(y, n_classes, rate)
    rng = as_generator(rng)
    mapping = np.array([rng.choice([c2 for c2 in range(n_classes) if c2 != c]) for c in range(n_classes)])
    flip = rng.random(y.shape[0]) < rate
    return np.where(flip, mapping[y], y), mapping


def symmetric_noise(y, n_classes: int, rate: float, rng) -> np.ndarray:
    """With probability ``rate`` replace a label by one of the *other* classes, uniformly."""
    y = _check(y, n_classes, rate)
    rng = as_generator(rng)
    flip = rng.random(y.shape[0]) < rate
    shift = rng.integers(1, n_classes, size=y.shape[0])  # 1..k-1: never the same class
    return np.where(flip, (y + shift) % n_classes, y)
