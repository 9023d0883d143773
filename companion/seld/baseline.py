"""A classical DOA baseline: the FOA acoustic intensity vector.

For a plane wave in SN3D FOA the dipole channels are the omni channel scaled by the unit
direction, ``[X, Y, Z] = W u``, so the active intensity of a time-frequency bin,
``I = Re(conj(W) [X, Y, Z])``, equals ``|W|^2 u``: it points at the source. With several
sources each bin is dominated by one of them (sparsity in time-frequency), so the
directions of many bins cluster around the sources; we pick the ``n`` strongest clusters
per frame (the number of sources is given, as an oracle).
"""

from __future__ import annotations

import numpy as np
import torch

from companion.seld.features import aligned_stft
from companion.seld.foa import unit_to_direction


def intensity_vectors(audio, *, n_fft: int = 256, hop: int = 128) -> np.ndarray:
    """Active intensity ``(T, F, 3)`` as (x, y, z) of FOA audio ``(4, n)`` ([W, Y, Z, X]).

    Frames are aligned with :func:`companion.seld.features.stft_features` (``T = n // hop``).
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 4:
        raise ValueError(f"expected FOA audio of shape (4, n) in ACN order [W, Y, Z, X], got {x.shape}")
    spec = aligned_stft(torch.as_tensor(x), n_fft, hop).numpy()  # (4, F, T)
    W, Y, Z, X = spec
    inten = np.real(np.conj(W)[..., None] * np.stack([X, Y, Z], axis=-1))  # (F, T, 3)
    return inten.transpose(1, 0, 2)


def broadband_direction(audio, *, n_fft: int = 256, hop: int = 128) -> tuple[float, float]:
    """Azimuth and elevation in degrees of the summed intensity of all bins (one source)."""
    total = intensity_vectors(audio, n_fft=n_fft, hop=hop).sum(axis=(0, 1))
    az, el = unit_to_direction(total)
    return float(az), float(el)


def frame_directions(audio, n_sources, *, n_fft: int = 256, hop: int = 128, smooth: int = 3, width_deg: float = 15.0) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max(n_sources)`` directions per frame from clusters of bin intensity directions.

    Parameters
    ----------
    audio : FOA ``(4, n)``.
    n_sources : int array ``(T,)``, how many directions to return in each frame.
    smooth : frames of moving average applied to the intensity (reduces noise).
    width_deg : a bin within this angle of a candidate direction supports it.

    Returns
    -------
    ``active (T, M)`` bool and unit vectors ``(T, M, 3)``, ``M = max(n_sources)``.
    Greedy: in each frame take the bin direction with the largest intensity-weighted support,
    average the supporting bins into a direction, drop every bin within ``2 width_deg``, repeat.
    """
    inten = intensity_vectors(audio, n_fft=n_fft, hop=hop)  # (T, F, 3)
    T = inten.shape[0]
    n_sources = np.asarray(n_sources, dtype=int)
    if n_sources.shape != (T,) or np.any(n_sources < 0):
        raise ValueError(f"n_sources must hold one non-negative count per frame ({T}), got shape {n_sources.shape}")
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        inten = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, inten)
    weight = np.linalg.norm(inten, axis=-1)  # (T, F)
    unit = inten / np.maximum(weight[..., None], 1e-20)
    M = int(n_sources.max(initial=0))
    active = np.zeros((T, max(M, 1)), dtype=bool)
    out = np.zeros((T, max(M, 1), 3))
    cos_w, cos_2w = np.cos(np.radians(width_deg)), np.cos(np.radians(2 * width_deg))
    for t in np.flatnonzero(n_sources > 0):
        u, w = unit[t], weight[t].copy()  # (F, 3), (F,)
        near = (u @ u.T) >= cos_w  # (F, F) which bins support which
        for m in range(n_sources[t]):
            if w.sum() <= 0:
                break
            support = near @ w  # (F,)
            peak = int(np.argmax(support))
            members = near[peak] & (w > 0)
            d = (w[members, None] * u[members]).sum(axis=0)
            out[t, m] = d / max(np.linalg.norm(d), 1e-20)
            active[t, m] = True
            w[(u @ out[t, m]) >= cos_2w] = 0.0  # remove this source's bins
    return active[:, :M] if M else active[:, :0], out[:, :M] if M else out[:, :0]
