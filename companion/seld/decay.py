"""Reverberation time measured from an impulse response: Schroeder's backward integration.

The energy decay curve (EDC) of an impulse response ``h`` is the energy still to come,
``EDC(t) = sum_{tau >= t} h(tau)^2`` (Schroeder 1965), in dB relative to its value at the
direct sound. Its late part is nearly a straight line in dB; the reverberation time is the
time that line takes to fall by 60 dB. ISO 3382 fits it by least squares between -5 dB and
-35 dB (``"T30"``) or -5 dB and -25 dB (``"T20"``) and extrapolates to 60 dB.

For FOA responses the pressure channel W is used: it is what an omnidirectional microphone
would record, and what the textbook formulas (Sabine, Eyring) describe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Fit ranges in dB below the start of the EDC (ISO 3382-1).
FIT_RANGES = {"T20": (-5.0, -25.0), "T30": (-5.0, -35.0)}


@dataclass
class Echogram:
    """A response's energy and its decay fit. Times in s, levels in dB re the total energy.

    ``t (n,)``, ``energy_db (n,)`` (``10 log10 h^2``), ``edc_db (n,)`` (Schroeder curve),
    ``slope_db_per_s`` and ``intercept_db`` of the line fitted over ``fit_db`` on ``edc_db``,
    ``rt60`` = ``-60 / slope``, ``method`` ("T20" or "T30")."""

    t: np.ndarray
    energy_db: np.ndarray
    edc_db: np.ndarray
    slope_db_per_s: float
    intercept_db: float
    fit_db: tuple[float, float]
    rt60: float
    method: str


def schroeder_db(h) -> np.ndarray:
    """Schroeder's energy decay curve of ``h (n,)`` in dB, 0 dB at the first sample.

    The last samples, where no energy remains, are -inf dB.
    """
    h = np.asarray(h, dtype=float)
    if h.ndim != 1 or h.size < 2:
        raise ValueError(f"need a single impulse response of shape (n,), n >= 2, got shape {h.shape}")
    edc = np.cumsum((h**2)[::-1])[::-1]
    if edc[0] <= 0:
        raise ValueError("the impulse response is all zeros; it has no decay to measure")
    with np.errstate(divide="ignore"):
        return 10 * np.log10(edc / edc[0])


def prepare_echogram(h, fs: float, *, method: str = "T30") -> Echogram:
    """Schroeder curve of ``h`` (a mono response, or FOA ``(4, n)`` whose W is used) and its fit.

    Raises ``ValueError`` when the curve never falls below the fit range's low end, e.g. a
    response cut off before it decayed by 35 dB (then ask for ``"T20"``, or simulate longer).
    """
    if method not in FIT_RANGES:
        raise ValueError(f"method must be one of {sorted(FIT_RANGES)}, got {method!r}")
    h = np.asarray(h, dtype=float)
    if h.ndim == 2 and h.shape[0] == 4:
        h = h[0]  # W: the pressure
    edc_db = schroeder_db(h)
    hi, lo = FIT_RANGES[method]
    if not np.any(edc_db <= lo):
        raise ValueError(
            f"the decay curve only falls to {np.min(edc_db[np.isfinite(edc_db)]):.1f} dB, above the "
            f"{lo:.0f} dB that {method} needs; use method='T20' or a longer response"
        )
    t = np.arange(h.size) / fs
    start = int(np.argmax(edc_db <= hi))
    stop = int(np.argmax(edc_db <= lo))  # first sample at or below the low end
    slope, intercept = np.polyfit(t[start : stop + 1], edc_db[start : stop + 1], 1)
    if slope >= 0:
        raise ValueError("the fitted decay does not decay; the response is not an impulse response")
    with np.errstate(divide="ignore"):
        energy_db = 10 * np.log10(h**2 / np.sum(h**2))
    return Echogram(t, energy_db, edc_db, float(slope), float(intercept), (hi, lo), float(-60.0 / slope), method)


def measure_rt60(h, fs: float, *, method: str = "T30") -> float:
    """Reverberation time in s of ``h`` by Schroeder integration and a ``method`` line fit."""
    return prepare_echogram(h, fs, method=method).rt60
