"""The three meanings of "overlap", in closed form, for the book's opening chapter.

- Classes whose supports overlap: two unit-variance Gaussians, whose Bayes error is never zero.
- Communication that overlaps computation: a two-stage pipeline of compute and transfer chunks.
- Sound events that overlap in time: how many sources sound at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from companion.plotting import COMM_COLOR, COMPUTE_COLOR, COLORS


# --- classes that overlap ---------------------------------------------------------------------

def two_gaussian_posterior(x: np.ndarray, separation: float) -> np.ndarray:
    """P(y = 1 | x) for classes N(-s/2, 1) (y = 0) and N(+s/2, 1) (y = 1) with equal priors.

    ``x`` has any shape; the result has the same shape. The log-odds are linear: ``s * x``.
    """
    if not np.isfinite(separation) or separation < 0:
        raise ValueError(f"separation must be finite and >= 0, got {separation}")
    x = np.asarray(x, dtype=float)
    return 1.0 / (1.0 + np.exp(-separation * x))


def bayes_error_two_gaussians(separation: float) -> float:
    """Error of the Bayes classifier for the two Gaussians above: Phi(-s/2)."""
    if not np.isfinite(separation) or separation < 0:
        raise ValueError(f"separation must be finite and >= 0, got {separation}")
    return float(norm.cdf(-separation / 2.0))


# --- communication that overlaps computation --------------------------------------------------

def overlap_bounds(compute_s: float, comm_s: float) -> tuple[float, float]:
    """Lower and upper bounds on the wall time of a step that must compute and communicate.

    Perfect overlap gives ``max(compute, comm)``; none gives ``compute + comm``.
    """
    for name, value in (("compute_s", compute_s), ("comm_s", comm_s)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return max(compute_s, comm_s), compute_s + comm_s


@dataclass(frozen=True)
class Interval:
    """A span of a schedule: ``lane`` is "compute" or "comm"; times in seconds."""

    lane: str
    start: float
    end: float


def pipeline_schedule(compute_s: float, comm_s: float, n_chunks: int) -> list[Interval]:
    """Split a step into ``n_chunks`` equal pieces; each piece's transfer starts when its compute
    is done and the link is free. ``n_chunks = 1`` is the sequential schedule.

    Played out by the book's one event model (:class:`companion.comm.Schedule`, one rank, one
    link). Returns the intervals in issue order; the makespan is the last ``end``.
    """
    from companion.comm.events import Schedule  # torch is imported only when a schedule is drawn

    if not isinstance(n_chunks, (int, np.integer)) or n_chunks < 1:
        raise ValueError(f"n_chunks must be a positive integer, got {n_chunks!r}")
    overlap_bounds(compute_s, comm_s)  # validates
    c, m = compute_s / n_chunks, comm_s / n_chunks
    sched = Schedule(1)
    prev: tuple[int, ...] = ()
    for i in range(int(n_chunks)):
        chunk = sched.compute(0, c, after=prev, name=f"compute {i}")
        sched.collective([0], m, after=[chunk], name=f"transfer {i}")
        prev = (chunk,)
    run = sched.run()
    return [Interval("compute" if op.kind == "compute" else "comm", start, end)
            for op, start, end in zip(run.ops, run.start_s, run.end_s)]


def pipeline_makespan(compute_s: float, comm_s: float, n_chunks: int) -> float:
    """Closed form of :func:`pipeline_schedule`'s makespan: c + (n - 1) max(c, m) + m per chunk."""
    spans = pipeline_schedule(compute_s, comm_s, n_chunks)  # validates
    c, m = compute_s / n_chunks, comm_s / n_chunks
    closed = c + (n_chunks - 1) * max(c, m) + m
    assert math.isclose(closed, spans[-1].end, rel_tol=1e-9, abs_tol=1e-12)
    return closed


# --- sound events that overlap -----------------------------------------------------------------

def polyphony(onsets_s: np.ndarray, offsets_s: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Number of events active at each time: event i is active on [onset_i, offset_i).

    ``onsets_s``, ``offsets_s``: shape (n_events,); ``times_s``: shape (n_times,). Returns int array
    of shape (n_times,).
    """
    on = np.asarray(onsets_s, dtype=float)
    off = np.asarray(offsets_s, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if on.shape != off.shape or on.ndim != 1:
        raise ValueError(f"onsets and offsets must be 1-D of equal length, got {on.shape} and {off.shape}")
    if np.any(off < on):
        raise ValueError("every offset must be >= its onset")
    active = (t[:, None] >= on[None, :]) & (t[:, None] < off[None, :])
    return active.sum(axis=1)


# --- the opening figure ------------------------------------------------------------------------

def plot_three_overlaps(separation: float = 1.5, compute_s: float = 1.0, comm_s: float = 0.8,
                        n_chunks: int = 4, events=None):
    """Draw the three overlaps side by side; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))

    ax = axes[0]
    x = np.linspace(-4, 4, 400)
    ax.plot(x, norm.pdf(x, -separation / 2), color=COLORS["blue"], label="class 0")
    ax.plot(x, norm.pdf(x, separation / 2), color=COLORS["orange"], label="class 1")
    ax.fill_between(x, np.minimum(norm.pdf(x, -separation / 2), norm.pdf(x, separation / 2)),
                    color=COLORS["purple"], alpha=0.3, label="overlap")
    ax.plot(x, 0.4 * two_gaussian_posterior(x, separation), "k--", lw=1, label="P(y=1|x) x 0.4")
    ax.set_title("Classes that overlap")
    ax.set_xlabel("x")
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[1]
    for row, (label, n) in enumerate((("sequential", 1), (f"{n_chunks} chunks", n_chunks))):
        for span in pipeline_schedule(compute_s, comm_s, n):
            y = 2 * row + (0 if span.lane == "compute" else 0.8)
            color = COMPUTE_COLOR if span.lane == "compute" else COMM_COLOR
            ax.broken_barh([(span.start, span.end - span.start)], (y, 0.7), color=color,
                           edgecolor="white")
    ax.set_yticks([0.75, 2.75], ["sequential", f"{n_chunks} chunks"])
    ax.set_xlabel("time (s)")
    ax.set_title("Communication that overlaps compute")
    ax.grid(False)

    ax = axes[2]
    if events is None:
        events = [(0.2, 1.4), (0.9, 2.2), (1.8, 2.9), (2.0, 2.6)]
    t = np.linspace(0, 3, 601)
    on, off = np.array(events).T
    for i, (a, b) in enumerate(events):
        ax.broken_barh([(a, b - a)], (i, 0.8), color=list(COLORS.values())[i % 8])
    ax.step(t, polyphony(on, off, t), where="post", color="k", lw=1.2, label="sources at once")
    ax.set_xlabel("time (s)")
    ax.set_title("Sound events that overlap")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
