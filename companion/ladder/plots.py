"""Figures of the Ladder Residual chapter; each takes an ``ax`` and returns it."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from companion.ladder.cost_model import Interval, parallel_speedup, uniform_speedup
from companion.plotting import COLORS, COMM_COLOR, COMPUTE_COLOR


def plot_schedule(intervals: Sequence[Interval], ax=None, title: str | None = None):
    """Compute row above a link row, one bar per interval, time in the intervals' unit."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.6))
    for row, kind, color in ((1.2, "compute", COMPUTE_COLOR), (0.0, "comm", COMM_COLOR)):
        bars = [(iv.start_s, iv.end_s - iv.start_s) for iv in intervals if iv.kind == kind]
        ax.broken_barh(bars, (row, 1.0), facecolors=color, edgecolor="white", linewidth=0.8)
        for iv in intervals:
            if iv.kind == kind and iv.end_s > iv.start_s:
                ax.text((iv.start_s + iv.end_s) / 2, row + 0.5, iv.name, ha="center", va="center",
                        fontsize=7, color="white")
    ax.set_yticks([0.5, 1.7])
    ax.set_yticklabels(["link", "compute"])
    ax.grid(axis="y", visible=False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return ax


def plot_speedup_model(ratios: np.ndarray, n_modules: Sequence[int], ax=None):
    """Modelled Ladder speed-up against ``a / c`` for several depths, with the ``(1 + r) / max(1, r)`` bound."""
    if ax is None:
        _, ax = plt.subplots()
    for n, color in zip(n_modules, (COLORS["sky"], COLORS["blue"], COLORS["purple"])):
        ax.plot(ratios, [uniform_speedup(1.0, r, n) for r in ratios], color=color, label=f"{n} modules")
    ax.plot(ratios, (1 + ratios) / np.maximum(1, ratios), "k--", lw=1, label="bound (1+r)/max(1,r)")
    ax.set_xscale("log")
    ax.set_xlabel("all-reduce time / module compute time, r = a / c")
    ax.set_ylabel("T_standard / T_ladder")
    ax.legend()
    return ax


def plot_speed_sweep(ratios, measured: dict, predicted, ax=None):
    """Measured speed-ups over standard (one line per variant in ``measured``) against ``a / c``, and the model."""
    if ax is None:
        _, ax = plt.subplots()
    colors = {"ladder": COLORS["blue"], "no-comm": COLORS["green"]}
    for name, values in measured.items():
        ax.plot(ratios, values, "o-", color=colors.get(name, COLORS["black"]), label=f"{name} (measured)")
    ax.plot(ratios, predicted, "--", color=COLORS["blue"], label="ladder (cost model)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("modelled all-reduce time / module compute time, a / c")
    ax.set_ylabel("decode tokens/s over standard")
    ax.legend()
    return ax


def plot_loss_curves(runs: dict, floor: float | None = None, ax=None):
    """Held-out loss against step for each named :class:`~companion.ladder.training.TrainingRun`."""
    if ax is None:
        _, ax = plt.subplots()
    colors = [COLORS["orange"], COLORS["blue"], COLORS["green"], COLORS["purple"]]
    for (name, run), color in zip(runs.items(), colors):
        ax.plot(run.eval_steps, run.eval_loss, "o-", ms=3, color=color, label=name)
    if floor is not None:
        ax.axhline(floor, color="grey", ls=":", label="entropy-rate floor")
    ax.set_xlabel("training step")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.legend()
    return ax


def plot_ac_sweep(sweep: dict, live: dict | None = None, ax=None):
    """Measured speed-ups over standard against ``a / c`` (a stored :mod:`~companion.ladder.ac_sweep`
    result), the cost model's curves for the Ladder and parallel blocks, and optional live points.

    Each point sits at the ratio its run really had (``effective_ratio``, from its own standard
    and no-communication steps), which the machine may push away from the nominal one. Filled
    markers are the stored sweep's medians with their 95 % notches; ``live`` maps a variant to
    ``(ratios, speed-ups, notches)`` drawn as hollow markers.
    """
    if ax is None:
        _, ax = plt.subplots()
    n = sweep["n_modules"]
    grid = np.geomspace(0.4, 5.0, 60)
    colors = {"ladder": COLORS["blue"], "parallel": COLORS["orange"]}
    model = {"ladder": lambda r: uniform_speedup(1.0, r, n), "parallel": lambda r: parallel_speedup(1.0, r, n)}
    for v, color in colors.items():
        ax.plot(grid, [model[v](r) for r in grid], "--", color=color, lw=1.2, label=f"{v} (cost model)")
        ratios = [row["effective_ratio"] for row in sweep["rows"]]
        ys = [row["variants"][v]["speedup"] for row in sweep["rows"]]
        errs = [row["variants"][v]["notch"] for row in sweep["rows"]]
        ax.errorbar(ratios, ys, yerr=errs, fmt="o", color=color, capsize=3, label=f"{v} (stored sweep)")
        if live and v in live:
            r_live, y_live, e_live = live[v]
            ax.errorbar(r_live, y_live, yerr=e_live, fmt="s", mfc="white", color=color, capsize=3,
                        label=f"{v} (this run)")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xticks([0.5, 0.67, 1, 2, 3])
    ax.set_xticklabels(["0.5", "0.67", "1", "2", "3"])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("all-reduce time / module compute time, a / c")
    ax.set_ylabel("decode speed-up over standard")
    ax.legend(fontsize=8)
    return ax
