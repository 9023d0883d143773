"""Calibration metrics on a probability matrix ``probs`` of shape ``(N, k)`` and labels ``(N,)``.

All binned metrics are *top-label* and use equal-width bins on ``[0, 1]`` unless said
otherwise. Bin ``b`` (of ``B``) holds confidences in ``[b/B, (b+1)/B)``, except the last bin,
which is closed: a confidence of exactly 1.0 lands in bin ``B - 1``. (torchmetrics <= 1.9 sends it
to a phantom bin ``B`` instead; netcal clips it to ``1 - eps``, so it agrees with us.)
"""

from __future__ import annotations

import numpy as np

from companion.calibration._validation import (check_labels, check_logits, check_n_bins,
                                               check_probs)


def _checked(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    p = check_probs(probs)
    return p, check_labels(labels, p.shape[0], p.shape[1])


def equal_width_bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index in ``[0, n_bins)`` of each confidence in ``[0, 1]``; 1.0 goes to the last bin."""
    # searchsorted against the same linspace edges the peers use, so a confidence that sits on
    # an interior edge lands in the same bin as in torchmetrics and scipy's binned_statistic
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges, conf, side="right") - 1
    return np.minimum(idx, n_bins - 1)


def _binned_gaps(conf: np.ndarray, correct: np.ndarray, idx: np.ndarray, n_bins: int):
    """Per bin: count, mean confidence, accuracy (the last two 0 for empty bins)."""
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(idx, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(idx, weights=correct, minlength=n_bins)
    safe = np.maximum(count, 1.0)
    return count, conf_sum / safe, acc_sum / safe


def top_label_bins(probs, labels, n_bins: int):
    """Checked inputs -> per-bin ``(count, mean confidence, accuracy)`` of the top label, each
    ``(n_bins,)``, over equal-width bins (a confidence of exactly 1.0 in the last bin)."""
    p, y = _checked(probs, labels)
    n_bins = check_n_bins(n_bins)
    # one pass over the matrix: argmax, then gather (faster than a second max over rows)
    pred = p.argmax(axis=1)
    conf = p[np.arange(p.shape[0]), pred].astype(np.float64)
    return _binned_gaps(conf, (pred == y).astype(np.float64), equal_width_bin_index(conf, n_bins), n_bins)


def ece(probs, labels, n_bins: int = 15) -> float:
    """Expected calibration error: ``sum_b (n_b / N) |acc_b - conf_b|`` over equal-width bins.

    Top-label, L1 (Guo et al., 2017). Equals torchmetrics' ``multiclass_calibration_error``
    (``norm="l1"``) whenever no confidence is exactly 1.0 (torchmetrics puts 1.0 in an extra bin;
    we, like netcal's ``ECE``, put it in the last one), and netcal's ``ECE`` for three or more classes.

    >>> ece([[0.9, 0.1], [0.2, 0.8]], [0, 0], n_bins=10)
    0.45
    """
    count, conf_b, acc_b = top_label_bins(probs, labels, n_bins)
    return float(np.sum(count * np.abs(acc_b - conf_b)) / np.sum(count))


def mce(probs, labels, n_bins: int = 15) -> float:
    """Maximum calibration error: ``max_b |acc_b - conf_b|`` over the non-empty equal-width bins."""
    count, conf_b, acc_b = top_label_bins(probs, labels, n_bins)
    return float(np.max(np.abs(acc_b - conf_b)[count > 0]))


def ace(probs, labels, n_bins: int = 15) -> float:
    """Average calibration error: the *unweighted* mean of ``|acc_b - conf_b|`` over the non-empty
    equal-width bins (Neumann et al., 2018), netcal's ``ACE`` and the "ACE" column of
    Chidambaram & Ge (2024). Sparse bins count as much as full ones, so it punishes rare
    confidence levels that ECE hides.

    >>> round(ace([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], [0, 0, 0], n_bins=10), 4)  # (0.1+0.8+0.4)/3
    0.4333
    """
    count, conf_b, acc_b = top_label_bins(probs, labels, n_bins)
    full = count > 0
    return float(np.mean(np.abs(acc_b - conf_b)[full]))


def adaptive_ece(probs, labels, n_bins: int = 15) -> float:
    """Equal-mass ("adaptive") ECE (Nixon et al., 2019): sort by confidence and cut into
    ``n_bins`` groups of (nearly) equal size, then weight ``|acc - conf|`` by group size.

    Not netcal's ``ACE``, which is the *unweighted average* over equal-width bins.
    """
    p, y = _checked(probs, labels)
    n_bins = check_n_bins(n_bins)
    n = p.shape[0]
    if n_bins > n:
        raise ValueError(f"n_bins={n_bins} equal-mass bins need at least as many points, got {n}")
    pred = p.argmax(axis=1)
    conf = p[np.arange(n), pred].astype(np.float64)
    order = np.argsort(conf, kind="stable")
    idx = np.empty(n, dtype=np.int64)
    idx[order] = (np.arange(n) * n_bins) // n  # rank -> group
    count, conf_b, acc_b = _binned_gaps(conf, (pred == y).astype(np.float64), idx, n_bins)
    return float(np.sum(count * np.abs(acc_b - conf_b)) / n)


def classwise_ece(probs, labels, n_bins: int = 15) -> float:
    """Class-wise ECE: the mean over classes ``c`` of the binned L1 calibration error of
    ``probs[:, c]`` against the indicator ``labels == c`` (Kull et al., 2019)."""
    p, y = _checked(probs, labels)
    n_bins = check_n_bins(n_bins)
    n, k = p.shape
    total = 0.0
    for c in range(k):
        count, conf_b, acc_b = _binned_gaps(p[:, c], (y == c).astype(np.float64),
                                            equal_width_bin_index(p[:, c], n_bins), n_bins)
        total += np.sum(count * np.abs(acc_b - conf_b)) / n
    return float(total / k)


def nll(probs, labels, *, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood ``-mean log probs[i, y_i]`` (nats); probabilities are floored at
    ``eps`` so a confident mistake costs ``-log eps`` instead of infinity."""
    p, y = _checked(probs, labels)
    return float(-np.mean(np.log(np.maximum(p[np.arange(p.shape[0]), y], eps))))


def nll_from_logits(logits, labels) -> float:
    """Mean cross-entropy ``-mean log_softmax(logits)[i, y_i]`` (nats), computed from the logits
    (as ``torch.nn.CrossEntropyLoss`` does), so no probability floor caps a confident mistake.

    >>> round(nll_from_logits([[0.0, 0.0], [50.0, 0.0]], [0, 1]), 4)
    25.3466
    """
    from scipy.special import log_softmax

    z = check_logits(logits)
    y = check_labels(labels, z.shape[0], z.shape[1])
    return float(-np.mean(log_softmax(z, axis=1)[np.arange(z.shape[0]), y]))


def brier(probs, labels) -> float:
    """Multiclass Brier score ``mean_i sum_c (probs[i, c] - [y_i == c])^2`` (in [0, 2])."""
    p, y = _checked(probs, labels)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def expected_kl(posterior, probs, *, eps: float = 1e-12) -> float:
    """Expected KL divergence ``mean_i KL(posterior[i] || probs[i])`` in nats.

    The theory's calibration measure (Chidambaram & Ge, 2024): it needs the true posterior
    ``pi(y | x)`` of shape ``(N, k)``, so it is computable on synthetic data only. Terms with
    ``posterior == 0`` contribute 0; ``probs`` is floored at ``eps``.
    """
    q = check_probs(posterior, name="posterior")
    p = check_probs(probs)
    if p.shape != q.shape:
        raise ValueError(f"shape mismatch: posterior {q.shape} vs probs {p.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1.0)) - np.log(np.maximum(p, eps))), 0.0)
    return float(np.mean(terms.sum(axis=1)))
