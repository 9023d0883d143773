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


def plot_echogram(echogram, ax=None, *, seconds: float | None = None):
    """Energy of a response in dB against time (grey), its Schroeder curve (black) and the
    decay line fitted over ``echogram.fit_db`` (red, dashed), from :func:`companion.seld.decay.prepare_echogram`."""
    ax = ax or plt.subplots(figsize=(6.4, 3.0))[1]
    e = echogram
    n = e.t.size if seconds is None else int(np.searchsorted(e.t, seconds))
    finite = np.isfinite(e.energy_db[:n])
    ax.plot(e.t[:n][finite], e.energy_db[:n][finite], color="0.7", lw=0.6, label="energy $h^2$")
    ax.plot(e.t[:n], e.edc_db[:n], color=COLORS["black"], lw=1.5, label="Schroeder curve")
    fit_t = e.t[(e.edc_db >= e.fit_db[1] - 15) & (e.t <= e.t[n - 1])]
    ax.plot(fit_t, e.intercept_db + e.slope_db_per_s * fit_t, "--", color=COLORS["red"],
            label=f"{e.method} fit: RT60 {e.rt60:.2f} s")
    ax.axhspan(e.fit_db[1], e.fit_db[0], color=COLORS["red"], alpha=0.08, lw=0)
    ax.set(xlabel="time after the direct sound (s)", ylabel="dB", ylim=(-80, 5))
    ax.legend(loc="upper right", fontsize=8)
    return ax


def plot_doa_map(ref_sed, ref_doa, pred_sed, pred_doa, ax=None, *, class_names=None):
    """Reference (open circles) and predicted (dots) directions of every active frame on an
    azimuth-elevation plane, one colour per class. ``sed (T, K)``, ``doa (T, K, 3)``."""
    ax = ax or plt.subplots(figsize=(6.4, 3.2))[1]
    palette = list(COLORS.values())
    K = ref_sed.shape[1]
    for k in range(K):
        ref_on, on = ref_sed[:, k] > 0.5, pred_sed[:, k] > 0.5
        if not (ref_on.any() or on.any()):
            continue
        colour = palette[k % len(palette)]
        az, el = unit_to_direction(ref_doa[ref_on, k])
        ax.scatter(az, el, s=90, facecolors="none", edgecolors=colour, lw=1.0)
        paz, pel = unit_to_direction(pred_doa[on, k])
        name = class_names[k] if class_names is not None else str(k)
        ax.scatter(paz, pel, s=6, color=colour, label=name)
    ax.set(xlim=(-185, 185), ylim=(-95, 95), xlabel="azimuth (deg)", ylabel="elevation (deg)")
    ax.set_xticks([-180, -90, 0, 90, 180])
    return ax


def plot_training_curves(records, labels, ax=None):
    """Validation SELD score per epoch of training ``records`` (JSON records of
    :mod:`companion.seld.experiments`), one line each, the best epoch as a dot and, for a run
    continued from an earlier one with a fresh optimiser (``initialised_from``), its first new
    epoch as a dotted vertical line. Resumed sittings are not marked: they change no step."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 3.2))
    colours = list(COLORS.values())
    for i, (record, label) in enumerate(zip(records, labels)):
        colour = colours[i % len(colours)]
        score = np.array([row["seld_score"] for row in record["val"]])
        epochs = np.arange(1, score.size + 1)  # 1-based, as in the prose
        ax.plot(epochs, score, color=colour, lw=1.0, label=label)
        best = record["best_epoch"]
        ax.plot(best + 1, score[best], "o", color=colour, ms=5)
        if record.get("initialised_from"):
            ax.axvline(record["initialised_from"]["epochs_run"] + 0.5, color=colour, ls=":", lw=1.0)
    ax.set(xlabel="epoch", ylabel="validation SELD score", yscale="log")
    ax.legend()
    return ax
