"""The book's plot style: one palette, readable sizes, no chart junk."""

from __future__ import annotations

import json
import math

import matplotlib as mpl

#: Colour-blind-safe palette (Okabe & Ito), in the order chapters use it.
COLORS = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "red": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
}

#: Colours of the two kinds of span in every timeline of the book.
COMPUTE_COLOR = COLORS["blue"]
COMM_COLOR = COLORS["orange"]

STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": mpl.cycler(color=list(COLORS.values())),
    "legend.frameon": False,
    "font.size": 10,
}


def use_style() -> None:
    """Apply the book's matplotlib style to every figure drawn after the call."""
    mpl.rcParams.update(STYLE)



def plot_lanes(lanes, ax=None, *, scale: float = 1e3, xlabel: str = "time (ms)", title=None):
    """Draw a Gantt chart with one row per lane, top to bottom in the order of ``lanes``.

    ``lanes`` maps a label to its spans (objects with ``kind`` "compute" or "comm", ``start_s``
    and ``end_s``, as for :func:`gantt_traces`); compute is drawn in :data:`COMPUTE_COLOR`,
    communication in :data:`COMM_COLOR`; times are multiplied by ``scale`` (milliseconds by
    default; ``1 / step_time_s`` puts the axis in steps). Returns the matplotlib ``Axes``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    lanes = dict(lanes)
    if not lanes:
        raise ValueError("plot_lanes needs at least one lane")
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.6 + 0.45 * len(lanes)))
    colors = {"compute": COMPUTE_COLOR, "comm": COMM_COLOR}
    for row, (label, spans) in enumerate(lanes.items()):
        for kind, color in colors.items():
            bars = [(scale * s.start_s, scale * (s.end_s - s.start_s)) for s in spans if s.kind == kind]
            if bars:
                ax.broken_barh(bars, (-row - 0.4, 0.8), facecolors=color, edgecolor="white",
                               linewidth=0.3)
    ax.set_yticks([-row for row in range(len(lanes))])
    ax.set_yticklabels([str(label) for label in lanes])
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    ax.legend(handles=[Patch(color=COMPUTE_COLOR, label="compute"),
                       Patch(color=COMM_COLOR, label="communication")],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2)
    if title:
        ax.set_title(title, loc="left")
    return ax

# --------------------------------------------------------------------------------------------
# Interactive figures for the HTML book: a Plotly figure whose sliders step through a grid of
# parameter values computed at build time. The live ipywidgets control stays for JupyterLab;
# this is its counterpart for a reader with no kernel. See CONTRIBUTING.md, "Widgets".
# --------------------------------------------------------------------------------------------

#: The CSS class of every interactive figure's container. tools/overlap_static.py loads
#: plotly.js on the pages that contain it; tools/browser_test.py finds the figures by it.
SLIDER_FIGURE_CLASS = "overlap-slider-figure"

#: More precomputed frames than this make pages heavy and notebooks slow: coarsen the grid.
MAX_FRAMES = 400


def line_traces(x, curves, *, colors=None, dash=None) -> list[dict]:
    """One Plotly scatter trace per entry of ``curves`` (name -> y values over ``x``)."""
    palette = list(COLORS.values())
    traces = []
    for i, (name, y) in enumerate(curves.items()):
        line = {"color": (colors or {}).get(name, palette[i % len(palette)])}
        if dash and name in dash:
            line["dash"] = dash[name]
        traces.append({"type": "scatter", "mode": "lines", "name": str(name),
                       "x": [float(v) for v in x], "y": [float(v) for v in y], "line": line})
    return traces


def gantt_traces(lanes, *, scale: float = 1e3) -> list[dict]:
    """Two horizontal-bar traces, compute and communication, for a timeline chart.

    ``lanes`` maps a lane label to its spans: objects with ``kind`` ("compute" or "comm"),
    ``start_s`` and ``end_s``, like :class:`companion.comm.Span` and the Ladder's intervals. Each
    lane is one row, compute in its upper half and communication in its lower half; times are
    multiplied by ``scale`` (milliseconds by default). There are always exactly two traces, so
    every frame of a slider figure has the same traces whatever the number of spans. Use
    :data:`GANTT_YAXIS` as the figure's ``yaxis`` so rows read top to bottom in lane order.
    """
    rows = {"compute": ([], [], []), "comm": ([], [], [])}
    for label, spans in lanes.items():
        for s in spans:
            if s.kind not in rows:
                raise ValueError(f"span kind {s.kind!r} of lane {label!r} is neither "
                                 "'compute' nor 'comm'")
            base, width, y = rows[s.kind]
            base.append(scale * float(s.start_s))
            width.append(scale * float(s.end_s - s.start_s))
            y.append(str(label))
    # every lane appears in the first trace, so the rows keep the lanes' order
    first = rows["compute"]
    for label in lanes:
        if str(label) not in first[2]:
            first[0].append(0.0), first[1].append(0.0), first[2].append(str(label))
    names = {"compute": "compute", "comm": "communication"}
    colors = {"compute": COMPUTE_COLOR, "comm": COMM_COLOR}
    offsets = {"compute": -0.42, "comm": 0.02}
    return [{"type": "bar", "orientation": "h", "name": names[k], "base": b, "x": w, "y": y,
             "width": 0.4, "offset": offsets[k],
             "marker": {"color": colors[k], "line": {"color": "white", "width": 0.5}}}
            for k, (b, w, y) in rows.items()]


#: The y axis of a :func:`gantt_traces` chart: lanes top to bottom in the order given.
GANTT_YAXIS = {"type": "category", "categoryorder": "trace", "autorange": "reversed",
               "automargin": True, "showgrid": False}


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class SliderFigure:
    """A Plotly figure with one slider per parameter, every combination computed in advance.

    Built by :func:`slider_figure`. ``figure`` is the :class:`plotly.graph_objects.Figure` at
    the default values (its sliders' steps use ``method="skip"``); ``frames[i]`` holds what
    changes in the traces at the ``i``-th combination of the grid (row-major in ``params``), as
    indices into ``pool``, which holds each distinct value once; :meth:`frame` resolves them. In a
    notebook it displays as HTML that needs plotly.js on the page (the book serves it from
    ``_static``); without plotly.js (JupyterLab) it shows one line pointing at the live control.
    """

    def __init__(self, figure, params, values, frames, pool, titles, div_id):
        self.figure, self.params, self.values = figure, params, values
        self.frames, self.pool, self.titles, self.div_id = frames, pool, titles, div_id

    def frame(self, **params) -> list[dict]:
        """What changes in the traces at one combination of the grid, pool indices resolved."""
        idx = 0
        for p, v in zip(self.params, self.values):
            idx = idx * len(v) + v.index(params[p])
        return [{k: self.pool[i] for k, i in t.items()} for t in self.frames[idx]]

    def to_html(self) -> str:
        import plotly.io as pio

        fig_json = pio.to_json(self.figure, validate=False, pretty=False)
        frames_json = json.dumps({"shape": [len(v) for v in self.values], "frames": self.frames,
                                  "pool": self.pool, "titles": self.titles},
                                 separators=(",", ":"))
        height = self.figure.layout.height or 420
        return _HTML_TEMPLATE.format(id=self.div_id, cls=SLIDER_FIGURE_CLASS, height=height,
                                     fig=fig_json.replace("</", "<\\/"),
                                     frames=frames_json.replace("</", "<\\/"))

    def _repr_html_(self) -> str:
        return self.to_html()

    def __repr__(self) -> str:
        grid = ", ".join(f"{p}: {len(v)} values" for p, v in zip(self.params, self.values))
        return f"<SliderFigure {len(self.frames)} frames ({grid})>"


#: A small Plotly template in the book's style (plotly's default one adds 7 kB per figure).
_PLOTLY_TEMPLATE = {"layout": {
    "font": {"size": 12}, "plot_bgcolor": "white", "paper_bgcolor": "white",
    "colorway": list(COLORS.values()),
    "xaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444", "ticks": "outside",
              "automargin": True},
    "yaxis": {"gridcolor": "#e5e5e5", "zeroline": False, "linecolor": "#444", "ticks": "outside",
              "automargin": True},
}}

_HTML_TEMPLATE = """<div class="{cls}" id="{id}-box">
<div id="{id}" style="width:100%;height:{height}px"></div>
<script type="text/javascript">
(function () {{
  var gd = document.getElementById("{id}");
  if (!window.Plotly) {{
    gd.style.height = "auto";
    gd.textContent = "(Interactive figure: the HTML book draws it with plotly.js; "
      + "in JupyterLab, the live control below redraws the figure.)";
    return;
  }}
  var fig = {fig};
  var data = {frames};
  var active = fig.layout.sliders.map(function (s) {{ return s.active || 0; }});
  Plotly.newPlot(gd, fig.data, fig.layout, {{responsive: true, displaylogo: false}})
    .then(function () {{
      gd.on("plotly_sliderchange", function (e) {{
        var k = Number(String(e.step.value).split(":")[0]);
        active[k] = Number(String(e.step.value).split(":")[1]);
        var index = 0;
        for (var i = 0; i < active.length; i++) {{ index = index * data.shape[i] + active[i]; }}
        var traces = data.frames[index], update = {{}};
        traces.forEach(function (t, j) {{
          Object.keys(t).forEach(function (key) {{
            if (!update[key]) {{ update[key] = traces.map(function () {{ return null; }}); }}
            update[key][j] = data.pool[t[key]];
          }});
        }});
        Object.keys(update).forEach(function (key) {{
          update[key] = update[key].map(function (v) {{ return v === null ? undefined : v; }});
        }});
        var ids = traces.map(function (t, j) {{ return j; }});
        var layout = data.titles ? {{"title.text": data.titles[index]}} : {{}};
        Plotly.update(gd, update, layout, ids);
      }});
    }});
}})();
</script>
</div>"""


def slider_figure(compute, grid, *, defaults=None, labels=None, layout=None, height=420,
                  max_frames=MAX_FRAMES):
    """Precompute ``compute`` over ``grid`` and return a :class:`SliderFigure` with sliders.

    Parameters
    ----------
    compute : callable
        ``compute(**params)`` returns the figure's Plotly traces (a list of trace dicts, e.g.
        from :func:`line_traces` or :func:`gantt_traces`), or a pair ``(traces, title)`` when
        the title changes with the parameters. Call the same package function that draws the
        notebook's matplotlib figure, so the two agree. Every combination must return the same
        number of traces of the same types.
    grid : dict
        Parameter name -> the values its slider steps through (a coarse grid: every
        combination is computed, at most ``max_frames`` of them).
    defaults : dict, optional
        The value each slider starts at (it must be one of the grid's values); the first value
        of each grid otherwise.
    labels : dict, optional
        Parameter name -> the label shown on its slider (the live control's description).
    layout : dict, optional
        Plotly layout of the figure (axis titles, fixed axis ranges so that a step is visible).

    Returns
    -------
    SliderFigure
        Display it in the cell (``display(fig)`` or as the cell's value).

    Examples
    --------
    >>> fig = slider_figure(lambda a: line_traces([0, 1], {"y": [0, a]}), {"a": [1.0, 2.0]})
    >>> len(fig.frames), fig.frame(a=2.0)[0]["y"]
    (2, [0.0, 2.0])
    """
    import hashlib
    import itertools

    import plotly.graph_objects as go

    if not callable(compute):
        raise ValueError(f"compute must be a function of the grid's parameters, got {compute!r}")
    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"grid must be a non-empty dict of parameter -> values, got {grid!r}")
    params = list(grid)
    values = [list(grid[p]) for p in params]
    for p, v in zip(params, values):
        if not v:
            raise ValueError(f"grid[{p!r}] is empty: give the values its slider steps through")
    n = math.prod(len(v) for v in values)
    if n > max_frames:
        sizes = " x ".join(f"{len(v)} ({p})" for p, v in zip(params, values))
        raise ValueError(f"grid has {sizes} = {n} combinations, more than max_frames="
                         f"{max_frames}: coarsen the grid or drop a parameter")
    defaults = dict(defaults or {})
    unknown = set(defaults) - set(params)
    if unknown:
        raise ValueError(f"defaults name parameters not in the grid: {sorted(unknown)}")
    active = []
    for p, v in zip(params, values):
        if p not in defaults:
            active.append(0)
            continue
        hits = [i for i, x in enumerate(v) if x == defaults[p]
                or (isinstance(x, float) and math.isclose(x, defaults[p], rel_tol=1e-9))]
        if not hits:
            raise ValueError(f"default {p}={defaults[p]!r} is not one of grid[{p!r}] = {v}")
        active.append(hits[0])

    frames, titles = [], []
    for combo in itertools.product(*values):
        out = compute(**dict(zip(params, combo)))
        traces, title = (out if isinstance(out, tuple) else (out, None))
        traces = _rounded(json.loads(json.dumps([dict(t) for t in traces], default=lambda o: o.tolist() if hasattr(o, "tolist") else float(o))))
        if frames and [t.get("type") for t in traces] != [t.get("type") for t in frames[0]]:
            raise ValueError(f"compute{dict(zip(params, combo))} returned traces "
                             f"{[t.get('type') for t in traces]}, but the first combination "
                             f"returned {[t.get('type') for t in frames[0]]}: every "
                             "combination must return the same traces")
        frames.append(traces)
        titles.append(title)
    index = 0
    for i, a in enumerate(active):
        index = index * len(values[i]) + a
    _check_every_slider_moves(params, values, active, frames, titles)

    # A frame keeps only what changes across the grid, each distinct value stored once in a
    # pool: the page carries no repeated styling and no repeated curves.
    varying = [sorted({k for f in frames for k in f[j] if f[j].get(k) != frames[0][j].get(k)})
               for j in range(len(frames[0]))]
    pool, where = [], {}

    def pooled(value):
        key = json.dumps(value, separators=(",", ":"))
        if key not in where:
            where[key] = len(pool)
            pool.append(value)
        return where[key]

    compact = [[{k: pooled(f[j][k]) for k in varying[j] if k in f[j]} for j in range(len(f))]
               for f in frames]

    labels = dict(labels or {})
    # Pixel layout: ``height`` is the plot with its title; each slider adds a band of
    # SLIDER_PX below the x axis. Plotly places sliders in plot-area units, so convert.
    top, axis_px, slider_px = 60, 55, 75
    plot_px = height - top
    sliders = []
    for k, (p, v) in enumerate(zip(params, values)):
        sliders.append({
            "active": active[k],
            "currentvalue": {"prefix": f"{labels.get(p, p)} = "},
            "pad": {"t": 0, "b": 0},
            "len": 1.0, "x": 0.0, "xanchor": "left",
            "y": -(axis_px + slider_px * k) / plot_px, "yanchor": "top",
            "steps": [{"label": _format(x), "method": "skip", "value": f"{k}:{i}",
                       "args": []} for i, x in enumerate(v)],
        })
    bottom = axis_px + slider_px * len(params)
    base_layout = {"template": _PLOTLY_TEMPLATE, "height": height + bottom,
                   "margin": {"b": bottom, "t": top},
                   "sliders": sliders,
                   "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}}
    if titles[index] is not None:
        base_layout["title"] = {"text": titles[index]}
    fig = go.Figure(data=frames[index], layout={**base_layout, **(layout or {})})
    fig.update_layout(sliders=sliders, height=base_layout["height"], margin=base_layout["margin"])
    varying_titles = titles if len(set(titles)) > 1 else None
    digest = hashlib.sha1(json.dumps([params, compact, titles], default=str).encode())
    return SliderFigure(fig, params, values, compact, pool, varying_titles,
                        f"overlap-fig-{digest.hexdigest()[:12]}")


def _rounded(value, digits: int = 5):
    """``value`` with every float rounded to ``digits`` significant digits (NaN becomes None)."""
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    return value


def _check_every_slider_moves(params, values, active, frames, titles):
    """Raise if some slider, moved with the others at their defaults, changes nothing."""
    shape = [len(v) for v in values]

    def flat(idx):
        out = 0
        for i, a in enumerate(idx):
            out = out * shape[i] + a
        return out

    start = flat(active)
    for k, p in enumerate(params):
        if shape[k] < 2:
            continue
        moved = [flat(active[:k] + [i] + active[k + 1:]) for i in range(shape[k])]
        if all(frames[m] == frames[start] and titles[m] == titles[start] for m in moved):
            raise ValueError(f"the slider of {p!r} changes nothing: compute returns the same "
                             f"traces for every value of {p} in {values[k]} (with the other "
                             "parameters at their defaults); drop it from the grid")
