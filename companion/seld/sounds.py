"""A library of procedurally generated sound classes, standing in for the paper's recorded events.

Each class is a small random family (a pitch, a rate or a band drawn per event) whose members
share a recognisable spectro-temporal shape, so a detector must learn the shape and not one
waveform. Everything is below 3 kHz so that it survives the chapter's 6.4 kHz sample rate.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfilt

from companion.seeding import as_generator

#: The class names, in label order.
CLASSES = (
    "tone",
    "harmonic",
    "up_chirp",
    "down_chirp",
    "low_noise",
    "high_noise",
    "click_train",
    "am_tone",
    "warble",
    "knock",
)

MIN_SAMPLE_RATE = 6000  # the highest component (2.8 kHz) must stay below Nyquist


def _fade(n: int, fs: int, seconds: float = 0.01) -> np.ndarray:
    """Raised-cosine fade-in and fade-out envelope of ``n`` samples (avoids onset clicks)."""
    m = max(1, min(int(seconds * fs), n // 2))
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(m) / m)
    env[:m] = ramp
    env[n - m :] = ramp[::-1]
    return env


def _band_noise(n: int, fs: int, lo: float, hi: float, rng: np.random.Generator) -> np.ndarray:
    sos = butter(4, [lo, hi], btype="band", fs=fs, output="sos")
    return sosfilt(sos, rng.standard_normal(n))


def _synth(name: str, t: np.ndarray, fs: int, rng: np.random.Generator) -> np.ndarray:
    n = t.size
    if name == "tone":
        return np.sin(2 * np.pi * rng.uniform(400, 600) * t)
    if name == "harmonic":  # a buzzy vowel-like stack with 1/k amplitudes
        f0 = rng.uniform(120, 200)
        return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 9))
    if name in ("up_chirp", "down_chirp"):
        f_lo, f_hi = rng.uniform(250, 400), rng.uniform(1800, 2400)
        f_start, f_end = (f_lo, f_hi) if name == "up_chirp" else (f_hi, f_lo)
        duration = max(t[-1], 1.0 / fs)
        phase = 2 * np.pi * (f_start * t + 0.5 * (f_end - f_start) * t**2 / duration)
        return np.sin(phase)
    if name == "low_noise":
        return _band_noise(n, fs, 80, rng.uniform(350, 450), rng)
    if name == "high_noise":
        return _band_noise(n, fs, rng.uniform(1900, 2100), 2800, rng)
    if name == "click_train":  # decaying broadband clicks at 15-25 per second
        period = int(fs / rng.uniform(15, 25))
        x = np.zeros(n)
        x[::period] = 1.0
        kernel = np.exp(-np.arange(int(0.004 * fs)) / (0.001 * fs)) * rng.standard_normal(int(0.004 * fs))
        return np.convolve(x, kernel)[:n]
    if name == "am_tone":  # a 1 kHz-ish carrier pulsing 6-10 times a second
        carrier = np.sin(2 * np.pi * rng.uniform(950, 1150) * t)
        return carrier * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(6, 10) * t))
    if name == "warble":  # frequency modulation of +-150 Hz around ~750 Hz
        fc, fm = rng.uniform(700, 800), rng.uniform(4, 7)
        return np.sin(2 * np.pi * fc * t + (150 / fm) * np.sin(2 * np.pi * fm * t))
    if name == "knock":  # damped resonances struck 3-6 times a second
        x = np.zeros(n)
        period = int(fs / rng.uniform(3, 6))
        x[::period] = 1.0
        k = np.arange(int(0.08 * fs)) / fs
        f1 = rng.uniform(180, 260)
        kernel = np.exp(-k / 0.015) * (np.sin(2 * np.pi * f1 * k) + 0.5 * np.sin(2 * np.pi * 2.7 * f1 * k))
        return np.convolve(x, kernel)[:n]
    raise ValueError(f"unknown sound class {name!r}; choose one of {CLASSES}")


def make_sound(class_index: int, n_samples: int, fs: int, rng) -> np.ndarray:
    """One event of class ``CLASSES[class_index]``: mono, ``(n_samples,)``, unit RMS, faded ends.

    Parameters
    ----------
    class_index : int in ``[0, len(CLASSES))``.
    n_samples : length in samples (at least 2).
    fs : sample rate in Hz, at least ``MIN_SAMPLE_RATE``.
    rng : seed or ``numpy.random.Generator``.
    """
    if not 0 <= int(class_index) < len(CLASSES):
        raise ValueError(f"class_index {class_index} is out of range [0, {len(CLASSES)})")
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    if fs < MIN_SAMPLE_RATE:
        raise ValueError(f"sample rate {fs} Hz is below {MIN_SAMPLE_RATE} Hz; the classes reach 2.8 kHz")
    rng = as_generator(rng)
    t = np.arange(n_samples) / fs
    x = _synth(CLASSES[int(class_index)], t, fs, rng) * _fade(n_samples, fs)
    rms = np.sqrt(np.mean(x**2))
    return x / max(rms, 1e-12)
