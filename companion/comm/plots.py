"""Gantt charts of timelines."""

from __future__ import annotations

from typing import Iterable

from .timeline import Span


def plot_gantt(spans: Iterable[Span], ax=None, title: str | None = None):
    """Draw one lane per rank, with a compute row above a communication row; time in milliseconds.

    Returns the matplotlib ``Axes``.
    """
    # imported here so that worker processes, which import companion.comm, skip matplotlib
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from companion.plotting import COMM_COLOR, COMPUTE_COLOR

    spans = list(spans)
    if not spans:
        raise ValueError("plot_gantt needs at least one span")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 1.0 + 0.9 * len({s.rank for s in spans})))
    ranks = sorted({s.rank for s in spans})
    ticks, labels = [], []
    for lane, rank in enumerate(ranks):
        base = 2.6 * lane
        for row, kind, color in ((1.2, "compute", COMPUTE_COLOR), (0.0, "comm", COMM_COLOR)):
            bars = [(1e3 * s.start_s, 1e3 * s.duration_s) for s in spans if s.rank == rank and s.kind == kind]
            if bars:
                ax.broken_barh(bars, (base + row, 1.0), facecolors=color, edgecolor="white", linewidth=0.5)
            ticks.append(base + row + 0.5)
            labels.append(f"rank {rank} {kind}")
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels)
    ax.set_xlabel("time (ms)")
    ax.grid(axis="y", visible=False)
    ax.legend(handles=[Patch(color=COMPUTE_COLOR, label="compute"), Patch(color=COMM_COLOR, label="communication")],
              loc="upper right", bbox_to_anchor=(1.0, 1.25), ncol=2)
    if title:
        ax.set_title(title, loc="left")
    return ax


def plot_link_fit(fits: dict, ax=None):
    """Measured medians (points; hollow where left out of the fit) and the fitted alpha-beta line, log-log.

    ``fits`` maps a label to a :class:`~companion.comm.link_fit.LinkFit`.

    Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .link_fit import coefficients

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, fit in fits.items():
        n = np.array(fit.nbytes, dtype=float)
        used = np.array(fit.fitted)
        t_ms = 1e3 * np.array(fit.measured_s)
        (points,) = ax.plot(n[used], t_ms[used], "o", markersize=4)
        # points left out of the fit (inside a token bucket) are drawn hollow
        ax.plot(n[~used], t_ms[~used], "o", markersize=4, markerfacecolor="none", color=points.get_color())
        grid = np.geomspace(n.min(), n.max(), 100)
        line = [sum(c * v for c, v in zip(coefficients(fit.operation, x, fit.world_size),
                                           (fit.link.latency_s, 1 / fit.link.bandwidth_bytes_per_s))) for x in grid]
        ax.plot(grid, 1e3 * np.array(line), color=points.get_color(), linewidth=1,
                label=f"{label}: α {1e6 * fit.alpha_s:.0f} µs, β {fit.beta_gbit_s:.3g} Gbit/s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("message size per rank (bytes)")
    ax.set_ylabel("time (ms), median")
    ax.legend(fontsize=8)
    return ax
