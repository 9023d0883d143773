"""Figures of the chapter: loss curves against the true floor, bytes per sync, utilisation curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from companion.plotting import COLORS

#: One colour per method, in the order the chapter introduces them.
METHOD_COLORS = {
    "data_parallel": COLORS["black"],
    "diloco": COLORS["blue"],
    "streaming": COLORS["green"],
    "streaming_overlap": COLORS["orange"],
    "streaming_overlap_fp4": COLORS["red"],
}
METHOD_LABELS = {
    "data_parallel": "data-parallel",
    "diloco": "DiLoCo",
    "streaming": "Streaming DiLoCo",
    "streaming_overlap": "+ overlapped comm.",
    "streaming_overlap_fp4": "+ overlapped FP4 comm.",
}


def run_colors(labels) -> dict:
    """``{label: colour}`` in the book's palette order, so that every figure of a notebook agrees."""
    palette = list(COLORS.values())
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def plot_loss_curves(results, floor: float | None = None, ax=None, title: str | None = None,
                     colors: dict | None = None):
    """Held-out loss (nats) of the outer parameters against inner steps, one line per run.

    ``results``: iterable of :class:`~companion.diloco.runner.RunResult` (or anything with
    ``eval_steps``, ``eval_losses`` and ``spec.label``). ``floor`` draws the source's loss floor;
    ``colors`` maps labels to colours (default: :func:`run_colors` of the labels).
    """
    ax = ax if ax is not None else plt.subplots()[1]
    results = list(results)
    colors = colors or run_colors([r.spec.label for r in results])
    styles = ["-", "--", "-.", ":"]
    for i, res in enumerate(results):
        ax.plot(res.eval_steps, res.eval_losses, marker="o", ms=3, label=res.spec.label,
                color=colors[res.spec.label], ls=styles[i % len(styles)] if i >= 3 else "-")
    if floor is not None:
        ax.axhline(floor, color=COLORS["black"], ls=":", lw=1, label="true floor (entropy)")
    ax.set_xlabel("inner steps per worker")
    ax.set_ylabel("held-out loss (nats/token)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_bytes_per_sync(ledgers: dict, steps: int, ax=None, title: str | None = None,
                        colors: dict | None = None):
    """Bytes one worker sends after each inner step (a stem per sync), one row of stems per run.

    ``ledgers``: ``{label: ByteLedger}``. The y axis is logarithmic, so a P-fold smaller peak
    reads as a fixed downward shift. ``colors`` maps labels to colours.
    """
    ax = ax if ax is not None else plt.subplots()[1]
    colors = colors or run_colors(list(ledgers))
    for i, (label, ledger) in enumerate(ledgers.items()):
        per_sync = ledger.per_sync()
        xs = np.array(sorted(per_sync))
        ys = np.array([per_sync[x] for x in xs], dtype=float)
        color = colors[label]
        ax.vlines(xs + 0.8 * i, 1, ys, color=color, lw=1.2)
        ax.plot(xs + 0.8 * i, ys, "o", ms=3, color=color, label=f"{label} (peak {ledger.peak_bytes / 1e3:.0f} kB)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(1.0, 0.3 * min(min(l.per_sync().values()) for l in ledgers.values())))
    ax.set_xlim(0, steps + 1)
    ax.set_xlabel("inner step")
    ax.set_ylabel("bytes sent by one worker")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def _utilization_axes(ax, title: str | None):
    """The axes every utilisation figure shares: log bandwidth, utilisation in [0, 1]."""
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("bandwidth (Gbit/s)")
    ax.set_ylabel("compute utilisation")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_utilization_curves(bandwidth_gbps, curves: dict, ax=None, dashed: dict | None = None,
                            marks: dict | None = None, title: str | None = None):
    """Compute utilisation against bandwidth (log x axis), one line per method.

    ``curves``: ``{method: CU array}`` (solid); ``dashed``: same, drawn dashed (a second model);
    ``marks``: ``{method: [(gbps, cu), ...]}`` drawn as points (the paper's table).
    """
    ax = ax if ax is not None else plt.subplots()[1]
    for method, cu in curves.items():
        ax.plot(bandwidth_gbps, cu, color=METHOD_COLORS[method], label=METHOD_LABELS[method])
    for method, cu in (dashed or {}).items():
        ax.plot(bandwidth_gbps, cu, color=METHOD_COLORS[method], ls="--", lw=1)
    for method, pts in (marks or {}).items():
        g, c = zip(*pts)
        ax.plot(g, c, "o", ms=4, mfc="none", color=METHOD_COLORS[method])
    return _utilization_axes(ax, title)


#: Line style of each fragment pattern in the pattern figures.
PATTERN_STYLES = {"strided": "-", "sequential": "--"}


def plot_fragment_assignment(n_layers: int, n_fragments: int, ax=None, title: str | None = None):
    """Which fragment each layer belongs to: one row per pattern, one cell per layer.

    The cell's colour and number are the fragment (:func:`~companion.diloco.fragments.layer_assignment`);
    layer 0, the first of the forward and the last of the backward, is on the left.
    """
    from matplotlib.colors import ListedColormap

    from companion.diloco.fragments import layer_assignment

    ax = ax if ax is not None else plt.subplots(figsize=(7, 1.6))[1]
    rows = []
    for pattern in PATTERN_STYLES:
        row = np.empty(n_layers, dtype=int)
        for p, layers in enumerate(layer_assignment(n_layers, n_fragments, pattern)):
            row[list(layers)] = p
        rows.append(row)
    palette = list(COLORS.values())
    ax.imshow(np.array(rows), aspect="auto", cmap=ListedColormap([palette[p % len(palette)] for p in
                                                                  range(n_fragments)]),
              vmin=-0.5, vmax=n_fragments - 0.5)
    for r, row in enumerate(rows):
        for layer, p in enumerate(row):
            dark = palette[p % len(palette)] in (COLORS["black"], COLORS["blue"], COLORS["red"])
            ax.text(layer, r, str(p), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_yticks(range(len(rows)), list(PATTERN_STYLES))
    ax.set_xticks(range(0, n_layers, max(1, n_layers // 12)))
    ax.set_xlabel("layer (forward runs left to right, backward right to left)")
    if title:
        ax.set_title(title)
    return ax


def plot_pattern_utilization(bandwidth_gbps, curves: dict, ax=None, title: str | None = None):
    """Compute utilisation against bandwidth for each ``(method, pattern)`` of ``curves``.

    Colours are the methods' (:data:`METHOD_COLORS`), line styles the patterns'
    (:data:`PATTERN_STYLES`: strided solid, sequential dashed).
    """
    ax = ax if ax is not None else plt.subplots()[1]
    for (method, pattern), cu in curves.items():
        ax.plot(bandwidth_gbps, cu, color=METHOD_COLORS[method], ls=PATTERN_STYLES[pattern],
                label=f"{METHOD_LABELS[method]}, {pattern}")
    return _utilization_axes(ax, title)


def plot_layer_run(layer_run, ax=None, *, by_fragment: bool = True, in_steps: bool = False,
                   highlight: str | None = None, title: str | None = None):
    """Gantt chart of a :class:`~companion.diloco.layer_sim.LayerRun`: compute, then messages.

    ``by_fragment``: one row of messages per fragment (else one ``link`` row); ``in_steps``: the
    time axis in compute steps instead of milliseconds; ``highlight``: the name of a message
    (e.g. ``"sync 0"``, layer 0's reduction) to draw in black on top.
    """
    from companion.plotting import plot_lanes

    lanes = layer_run.lanes(by_fragment=by_fragment)
    scale, xlabel = ((1 / layer_run.step_time_s, "time (compute steps)") if in_steps
                     else (1e3, "time (ms)"))
    ax = plot_lanes(lanes, ax=ax, scale=scale, xlabel=xlabel, title=title)
    if highlight is not None:
        for row, spans in enumerate(lanes.values()):
            bars = [(scale * s.start_s, scale * (s.end_s - s.start_s)) for s in spans
                    if s.kind == "comm" and s.name == highlight]
            if bars:
                ax.broken_barh(bars, (-row - 0.4, 0.8), facecolors=COLORS["black"])
    return ax
