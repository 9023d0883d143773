"""The book's plot style: one palette, readable sizes, no chart junk."""

from __future__ import annotations

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
