"""Figures of the CO2 chapter: each takes an ``ax`` (or makes one) and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from companion.plotting import COLORS

#: One colour per method, used by every figure of the chapter.
METHOD_COLORS = {"data_parallel": COLORS["red"], "local_sgd": COLORS["orange"],
                 "co2": COLORS["blue"]}
METHOD_NAMES = {"data_parallel": "data-parallel", "local_sgd": "sync local SGD", "co2": "CO2"}


def _ax(ax):
    return plt.subplots()[1] if ax is None else ax


def plot_contraction(curves: dict, x, *, xlabel: str, ax=None):
    """Per-round contraction factor (spectral radius) against ``x``; ``curves``: label -> values.

    The dashed line at 1 separates convergence (below) from divergence (above).
    """
    ax = _ax(ax)
    for label, values in curves.items():
        ax.plot(x, values, label=label)
    ax.axhline(1.0, color=COLORS["black"], lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("contraction per round")
    ax.legend()
    return ax


def plot_utilization(bandwidths, utilization: dict, *, ax=None, measured: dict | None = None):
    """Fraction of the compute-bound rate against bandwidth (bytes/s, log axis).

    ``utilization`` maps a method to predicted values (lines); ``measured`` optionally maps a
    method to ``(bandwidths, values)`` drawn as dots in the same colour.
    """
    ax = _ax(ax)
    for method, values in utilization.items():
        ax.plot(bandwidths, values, color=METHOD_COLORS[method], label=METHOD_NAMES[method])
    for method, (bw, values) in (measured or {}).items():
        ax.plot(bw, values, "o", color=METHOD_COLORS[method])
    ax.set_xscale("log")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("link bandwidth (bytes/s)")
    ax.set_ylabel("fraction of compute-bound rate")
    ax.legend()
    return ax


def plot_loss_curves(curves: dict, *, floor: float, ax=None, window: int = 10, colors=None,
                     styles=None):
    """Training loss (moving average over ``window`` steps) per run, and the entropy floor."""
    ax = _ax(ax)
    for label, losses in curves.items():
        losses = np.asarray(losses, dtype=float)
        w = min(window, len(losses))
        smooth = np.convolve(losses, np.ones(w) / w, mode="valid")
        steps = np.arange(w, len(losses) + 1)
        ax.plot(steps, smooth, label=label, color=(colors or {}).get(label),
                ls=(styles or {}).get(label, "-"))
    ax.axhline(floor, color=COLORS["black"], lw=0.8, ls="--", label="entropy floor")
    ax.set_xlabel("inner step")
    ax.set_ylabel("training loss (nats/token)")
    ax.legend(fontsize=8)
    return ax
