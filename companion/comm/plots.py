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
