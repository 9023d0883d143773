"""Figures of the chapter. Each function draws on ``ax`` (or a new figure) and returns the axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from companion.plotting import COLORS
from companion.seld.foa import CHANNELS, unit_to_direction

_CHANNEL_COLORS = [COLORS["black"], COLORS["blue"], COLORS["green"], COLORS["red"]]


def plot_foa_channels(audio, fs: int, ax=None, *, seconds: float | None = None):
    """The four FOA channels ``(4, n)`` against time, offset vertically, labelled W, Y, Z, X."""
    ax = ax or plt.subplots(figsize=(6.4, 3.2))[1]
    n = audio.shape[1] if seconds is None else min(audio.shape[1], int(seconds * fs))
    t = np.arange(n) / fs
    step = 2.2 * np.max(np.abs(audio[:, :n])) or 1.0
    for c, name in enumerate(CHANNELS):
        ax.plot(t, audio[c, :n] - c * step, color=_CHANNEL_COLORS[c], lw=0.8)
    ax.set_yticks([-c * step for c in range(4)], CHANNELS)
    ax.set_xlabel("time (s)")
    return ax


def plot_direction_map(found, truth=None, ax=None):
    """Directions as (azimuth, elevation) points: ``found`` crosses, ``truth`` circles (``(m, 3)`` vectors)."""
    ax = ax or plt.subplots(figsize=(5.0, 3.0))[1]
    if truth is not None:
        az, el = unit_to_direction(np.atleast_2d(truth))
        ax.scatter(az, el, s=90, facecolors="none", edgecolors=COLORS["black"], label="label")
    az, el = unit_to_direction(np.atleast_2d(found))
    ax.scatter(az, el, marker="x", s=60, color=COLORS["red"], label="intensity vector")
    ax.set(xlim=(-185, 185), ylim=(-95, 95), xlabel="azimuth (deg)", ylabel="elevation (deg)")
    ax.set_xticks([-180, -90, 0, 90, 180])
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_tracks(sed, doa, fps: float, axes=None, *, pred_sed=None, pred_doa=None, class_names=None):
    """Activity per class (top) and azimuth and elevation of active classes (middle, bottom).

    Reference ``sed (T, K)`` and ``doa (T, K, 3)`` in grey; predictions (optional) in colour.
    """
    if axes is None:
        _, axes = plt.subplots(3, 1, figsize=(6.4, 5.2), sharex=True)
    T, K = sed.shape
    t = np.arange(T) / fps
    palette = list(COLORS.values())
    for k in range(K):
        ref_on = sed[:, k] > 0.5
        axes[0].fill_between(t, k - 0.4, k + 0.4, where=ref_on, color="0.75", step="mid", lw=0)
        az, el = unit_to_direction(doa[:, k])
        axes[1].plot(t[ref_on], az[ref_on], ".", color="0.6", ms=5)
        axes[2].plot(t[ref_on], el[ref_on], ".", color="0.6", ms=5)
        if pred_sed is not None:
            on = pred_sed[:, k] > 0.5
            colour = palette[k % len(palette)]
            axes[0].plot(t[on], np.full(on.sum(), k), "|", color=colour, ms=6)
            paz, pel = unit_to_direction(pred_doa[:, k])
            axes[1].plot(t[on], paz[on], ".", color=colour, ms=2)
            axes[2].plot(t[on], pel[on], ".", color=colour, ms=2)
    axes[0].set_yticks(range(K), class_names if class_names is not None else range(K), fontsize=7)
    axes[0].set_ylabel("class")
    axes[1].set(ylabel="azimuth (deg)", ylim=(-190, 190))
    axes[2].set(ylabel="elevation (deg)", ylim=(-70, 60), xlabel="time (s)")
    return axes
