"""Figures of the chapter: speedup curves of the pipeline model and modelled timelines."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from companion import comm
from companion.plotting import COLORS

from .layout import make_layout
from .pipeline_model import pipelined_time, sequential_time, speedup_ceiling
from .schedule_model import ScheduleTrace, simulate_schedule, trace_spans

__all__ = ["speedup_curve", "plot_speedup_curves", "model_trace", "plot_model_gantt"]


def speedup_curve(ratios, world_size: int, *, contention: float = 0.0, gemm_slowdown: float = 0.0) -> np.ndarray:
    """``T_seq / T_pipe`` against ``C_RS / G`` (G = 1) for a p-chunk ring pipeline.

    ``contention`` is the book's ``c`` (a chunk stretched by ``c`` times its overlap with the
    send in flight); ``gemm_slowdown`` is the T3 paper's ``gamma_g`` (every chunk ``1 + gamma_g``
    times longer). See :func:`~companion.t3.pipeline_model.pipelined_time`.
    """
    out = []
    for ratio in np.asarray(ratios, dtype=float):
        g, x = 1.0 / world_size, ratio / max(world_size - 1, 1)
        t = pipelined_time(g, x, world_size, gemm_slowdown=gemm_slowdown, contention=contention)
        out.append(sequential_time(1.0, ratio) / t)
    return np.array(out)


def plot_speedup_curves(world_sizes=(2, 4, 8, 16), contention: float = 0.0, ax=None, max_ratio: float = 4.0):
    """Speedup against ``C_RS / G`` for several p, with each ceiling ``2 - 1/p`` dashed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.4))
    ratios = np.linspace(0.02, max_ratio, 200)
    palette = list(COLORS.values())
    for i, p in enumerate(world_sizes):
        color = palette[i % len(palette)]
        ax.plot(ratios, speedup_curve(ratios, p, contention=contention), color=color, label=f"p = {p}")
        ax.axhline(speedup_ceiling(p), color=color, linestyle=":", linewidth=0.8)
    ax.axhline(2.0, color="black", linestyle="--", linewidth=0.8, label="2x")
    ax.set_xlabel("communication / compute,  $C_{RS} / G$")
    ax.set_ylabel("$T_{seq} / T_{pipe}$")
    ax.set_ylim(0.9, 2.1)
    ax.legend(ncol=3, fontsize=8, loc="lower right")
    return ax


def model_trace(schedule: str, world_size: int, chunks: int, *, gemm_s: float, comm_ratio: float,
                contention: float = 0.0, latency_s: float = 0.0) -> ScheduleTrace:
    """The event model of ``schedule`` for a GEMM of ``gemm_s`` whose reduce-scatter takes ``comm_ratio * gemm_s``.

    Bandwidth time splits evenly over the ``p * m`` row chunks; each message also pays ``latency_s``.
    """
    layout = make_layout(schedule, world_size, chunks)
    n_chunks = world_size * layout.chunks_per_block
    bandwidth_s = max(comm_ratio * gemm_s - (world_size - 1) * latency_s, 0.0) * world_size / (world_size - 1)
    step_s = latency_s + bandwidth_s / n_chunks
    per_item = gemm_s / n_chunks
    groups = [per_item * len(group) for group in layout.groups]
    return simulate_schedule(layout, groups, step_s, contention=contention)


def plot_model_gantt(trace: ScheduleTrace, ax=None, title: str | None = None):
    """The modelled timeline of every rank through :func:`companion.comm.plot_gantt`."""
    return comm.plot_gantt(trace_spans(trace), ax=ax, title=title)


