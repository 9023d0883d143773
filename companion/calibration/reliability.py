"""Reliability diagrams: compute the binned data, then draw it (two separate steps)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.calibration.metrics import top_label_bins


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Top-label reliability data over ``n_bins`` equal-width bins.

    Attributes (arrays of shape ``(n_bins,)``): ``edges`` has ``n_bins + 1`` entries;
    ``count`` points per bin; ``confidence`` and ``accuracy`` are bin means (NaN for empty bins).
    ``ece`` is the count-weighted mean gap, identical to :func:`companion.calibration.ece`.
    """

    edges: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def prepare_reliability_diagram(probs, labels, n_bins: int = 15) -> ReliabilityDiagram:
    """Bin the top-label confidences of ``probs`` ``(N, k)`` against ``labels`` ``(N,)``."""
    count, conf_b, acc_b = top_label_bins(probs, labels, n_bins)
    full = count > 0
    # the shared helper reports 0 for empty bins; the diagram marks them NaN (nothing to draw)
    conf_b = np.where(full, conf_b, np.nan)
    acc_b = np.where(full, acc_b, np.nan)
    gaps = np.where(full, np.abs(acc_b - conf_b), 0.0)
    return ReliabilityDiagram(edges=np.linspace(0.0, 1.0, count.size + 1), count=count,
                              confidence=conf_b, accuracy=acc_b,
                              ece=float(np.sum(count * gaps) / np.sum(count)))


def plot_reliability_diagram(diagram: ReliabilityDiagram, ax=None, *, label: str | None = None,
                             color: str | None = None):
    """Draw accuracy per bin as bars against the diagonal; return the matplotlib ``ax``.

    Bar height: accuracy in the bin; the dot on each bar: the mean confidence there, so the gap
    between dot and bar top is the bin's miscalibration. Empty bins are left blank.
    """
    import matplotlib.pyplot as plt

    if not isinstance(diagram, ReliabilityDiagram):
        raise ValueError("pass the result of prepare_reliability_diagram")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.4))
    full = diagram.count > 0
    left, width = diagram.edges[:-1], np.diff(diagram.edges)
    text = label if label is not None else "accuracy"
    ax.bar(left[full], diagram.accuracy[full], width=width[full], align="edge", alpha=0.55,
           color=color, edgecolor="white", label=f"{text} (ECE {diagram.ece:.3f})")
    ax.plot(diagram.confidence[full], diagram.accuracy[full], "o", ms=3, color=color or "k")
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    return ax
