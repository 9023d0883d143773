"""A second classical DOA baseline: narrowband MUSIC on the FOA spatial covariance.

MUSIC (Schmidt 1986) splits the covariance ``R = E[x x^H]`` of the four channels into a
signal subspace, spanned by the steering vectors of the ``n`` sources, and its orthogonal
complement, the noise subspace ``E_n`` (the eigenvectors of the ``4 - n`` smallest
eigenvalues). A direction ``u`` whose steering vector ``a(u)`` lies in the signal subspace
is orthogonal to ``E_n``, so the pseudo-spectrum ``|a|^2 / |E_n^H a|^2`` peaks there.

For FOA the steering vector is the channel gains of :func:`~companion.seld.foa.foa_gains`,
the same at every frequency. We convert SN3D to N3D (dipoles times ``sqrt 3``,
``a = [1, sqrt3 u_y, sqrt3 u_z, sqrt3 u_x]``): a diffuse field, whose SN3D dipoles carry a
third of W's power each (notebook 1), then has the identity as covariance, the white noise
MUSIC assumes. The covariance is estimated per label frame and per block of ``block_bins``
frequency bins, over ``smooth`` frames; the block pseudo-spectra are combined by a
power-weighted mean (an incoherent wideband MUSIC).
As for the intensity baseline, the number of sources per frame is given, at most 3
(four channels leave at least one noise dimension), or estimated from the same covariances by the
minimum description length (:func:`mdl_counts`, Wax & Kailath 1985), which makes MUSIC a complete
detector-and-localiser that needs no labels.
"""

from __future__ import annotations

import numpy as np
import torch

from companion.seld.features import aligned_stft
from companion.seld.foa import direction_to_unit

#: SN3D -> N3D at first order: W unchanged, Y, Z, X times sqrt(2n + 1) = sqrt(3).
N3D_SCALE = np.array([1.0, np.sqrt(3), np.sqrt(3), np.sqrt(3)])
MAX_SOURCES = 3


def direction_grid(step_deg: float = 5.0) -> np.ndarray:
    """Unit vectors ``(G, 3)`` of an azimuth-elevation grid with ``step_deg`` spacing (poles included)."""
    if not 0 < step_deg <= 45:
        raise ValueError(f"step_deg must be in (0, 45] degrees, got {step_deg}")
    az = np.arange(-180.0, 180.0, step_deg)
    el = np.arange(-90.0, 90.0 + 1e-9, step_deg)
    A, E = np.meshgrid(az, el, indexing="ij")
    return direction_to_unit(A.ravel(), E.ravel())


def steering(unit) -> np.ndarray:
    """N3D steering vectors ``(..., 4)`` [W, Y, Z, X] of unit vectors ``(..., 3)``."""
    u = np.asarray(unit, dtype=float)
    return np.stack([np.ones(u.shape[:-1]), u[..., 1], u[..., 2], u[..., 0]], axis=-1) * N3D_SCALE


def foa_covariances(audio, *, n_fft: int = 256, hop: int = 128, block_bins: int = 16, smooth: int = 3):
    """Spatial covariances ``(T, B, 4, 4)`` (N3D) per frame and frequency block, and their power ``(T, B)``.

    Frames are those of :func:`~companion.seld.features.aligned_stft` (``T = n // hop``); block
    ``b`` holds bins ``[b block_bins, (b + 1) block_bins)``, the DC bin left out; each frame's
    covariance averages the bins of the block over ``smooth`` frames centred on it.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != 4:
        raise ValueError(f"expected FOA audio of shape (4, n) in ACN order [W, Y, Z, X], got {x.shape}")
    if block_bins < 1 or smooth < 1:
        raise ValueError(f"block_bins and smooth must be >= 1, got {block_bins} and {smooth}")
    spec = aligned_stft(torch.as_tensor(x), n_fft, hop).numpy()[:, 1:]  # (4, F - 1, T), DC dropped
    spec = spec * N3D_SCALE[:, None, None]
    n_blocks = spec.shape[1] // block_bins
    if n_blocks < 1:
        raise ValueError(f"block_bins={block_bins} exceeds the {spec.shape[1]} bins of n_fft={n_fft}")
    blocks = spec[:, : n_blocks * block_bins].reshape(4, n_blocks, block_bins, -1)  # (4, B, bins, T)
    outer = np.einsum("ibkt,jbkt->tbij", blocks, blocks.conj()) / block_bins  # (T, B, 4, 4)
    if smooth > 1:
        kernel = np.ones(smooth) / smooth
        outer = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, outer)
    power = np.real(np.trace(outer, axis1=-2, axis2=-1))
    return outer, power


def noise_subspaces(R, n_sources: int) -> np.ndarray:
    """Eigenvectors ``(..., 4, 4 - n)`` of the ``4 - n`` smallest eigenvalues of each covariance."""
    if not 1 <= n_sources <= MAX_SOURCES:
        raise ValueError(f"MUSIC with four FOA channels finds 1 to {MAX_SOURCES} sources, got n_sources={n_sources}")
    return np.linalg.eigh(R)[1][..., : 4 - n_sources]  # eigh sorts eigenvalues ascending


def mdl_order(eigenvalues, n_snapshots: float, max_order: int = MAX_SOURCES) -> np.ndarray:
    """The number of signals by the minimum description length of Wax and Kailath (1985).

    ``eigenvalues (..., M)`` of sample covariances of ``M`` complex channels over ``n_snapshots``
    snapshots each. For ``k`` signals the ``M - k`` smallest eigenvalues belong to white noise and
    should be equal; the criterion charges their spread (``N (M - k)`` times the log of their
    arithmetic over their geometric mean) plus ``k (2M - k) / 2 * log N`` for the free parameters
    of ``k`` complex eigenvectors and eigenvalues, and returns the ``k`` in ``[0, max_order]``
    with the least total, shape ``(...)``.
    """
    lam = np.sort(np.asarray(eigenvalues, dtype=float), axis=-1)[..., ::-1]
    M = lam.shape[-1]
    if not 0 <= max_order < M:
        raise ValueError(f"max_order must be in [0, {M - 1}] for {M} channels, got {max_order!r}")
    if not (np.isfinite(n_snapshots) and n_snapshots > 1):
        raise ValueError(f"n_snapshots must be a finite number > 1, got {n_snapshots!r}")
    if np.any(~np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("eigenvalues must be finite and >= 0 (of a covariance matrix)")
    lam = np.maximum(lam, 1e-300)
    costs = []
    for k in range(max_order + 1):
        tail = lam[..., k:]
        log_ratio = np.log(tail.mean(axis=-1)) - np.log(tail).mean(axis=-1)  # >= 0, 0 iff all equal
        costs.append(n_snapshots * (M - k) * log_ratio + 0.5 * k * (2 * M - k) * np.log(n_snapshots))
    return np.argmin(np.stack(costs, axis=-1), axis=-1)


def mdl_counts(audio, *, n_fft: int = 256, hop: int = 128, block_bins: int = 16, smooth: int = 3,
               max_sources: int = MAX_SOURCES) -> np.ndarray:
    """Sources per frame ``(T,)`` estimated from the audio alone: MDL on the broadband covariance.

    An FOA steering vector does not depend on frequency, so the covariances of all blocks share one
    signal subspace and their sum, over ``B * block_bins * smooth`` STFT snapshots, has ``n`` large
    eigenvalues for ``n`` sources and equal small ones for the (N3D-white) diffuse noise. That
    snapshot count is nominal: neighbouring frames and bins of a Hann STFT are correlated, so the
    true count is smaller and MDL, which trusts it, leans towards more sources. Reflections are
    further sources to it (each a direction of its own), so in a room it overcounts; the chapter
    measures by how much rather than tuning the count.
    """
    R, _ = foa_covariances(audio, n_fft=n_fft, hop=hop, block_bins=block_bins, smooth=smooth)
    broadband = R.sum(axis=1)  # (T, 4, 4)
    n_snapshots = R.shape[1] * block_bins * smooth
    return mdl_order(np.linalg.eigvalsh(broadband), n_snapshots, max_sources)


def music_spectrum(noise, power, unit) -> np.ndarray:
    """Wideband MUSIC pseudo-spectrum ``(T, G)``: the power-weighted mean over frequency blocks
    of ``|a|^2 / |E_n^H a(u)|^2`` (large at a source).

    ``noise (T, B, 4, 4 - n)`` from :func:`noise_subspaces`, ``power (T, B)``; ``unit`` the
    candidate directions, ``(G, 3)`` for all frames or ``(T, G, 3)`` per frame. Averaging the
    spectra (not their denominators) keeps a source that dominates only some blocks.
    """
    a = steering(unit)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    a_t = a.T if a.ndim == 2 else np.swapaxes(a, -1, -2)[:, None]  # (4, G) or (T, 1, 4, G)
    coeff = np.swapaxes(noise.conj(), -1, -2) @ a_t  # (T, B, 4 - n, G): E_n^H a
    proj = np.sum(coeff.real**2 + coeff.imag**2, axis=-2)  # (T, B, G)
    w = power / np.maximum(power.sum(axis=1, keepdims=True), 1e-30)
    return (w[:, None, :] @ (1.0 / np.maximum(proj, 1e-12)))[:, 0]  # (T, G)


def frame_directions(
    audio, n_sources, *, n_fft: int = 256, hop: int = 128, block_bins: int = 16, smooth: int = 3,
    grid_deg: float = 10.0, width_deg: float = 15.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``max(n_sources)`` MUSIC directions per frame, the interface of
    :func:`companion.seld.baseline.frame_directions`.

    Returns ``active (T, M)`` bool and unit vectors ``(T, M, 3)``, ``M = max(n_sources)``.
    In each frame the ``n`` highest peaks of the spectrum on the grid are taken greedily, each
    at least ``2 width_deg`` from those before, then refined on a 1 degree grid around it.
    """
    R, power = foa_covariances(audio, n_fft=n_fft, hop=hop, block_bins=block_bins, smooth=smooth)
    T = R.shape[0]
    n_sources = np.asarray(n_sources, dtype=int)
    if n_sources.shape != (T,) or np.any(n_sources < 0) or np.any(n_sources > MAX_SOURCES):
        raise ValueError(
            f"n_sources must hold one count in [0, {MAX_SOURCES}] per frame ({T}), "
            f"got shape {n_sources.shape} and max {n_sources.max(initial=0)}"
        )
    grid = direction_grid(grid_deg)
    M = int(n_sources.max(initial=0))
    active = np.zeros((T, M), dtype=bool)
    out = np.zeros((T, M, 3))
    cos_2w = np.cos(np.radians(2 * width_deg))
    for n in range(1, MAX_SOURCES + 1):
        frames = np.flatnonzero(n_sources == n)
        for start in range(0, frames.size, 32):  # chunks bound the (frames, blocks, grid) arrays
            ts = frames[start : start + 32]
            noise = noise_subspaces(R[ts], n)
            score = music_spectrum(noise, power[ts], grid)  # (t, G)
            for m in range(n):  # greedy, all frames of the chunk at once
                best = grid[np.argmax(score, axis=1)]  # (t, 3)
                out[ts, m] = _refine(noise, power[ts], best, grid_deg / 2)
                active[ts, m] = True
                score[best @ grid.T >= cos_2w] = -np.inf  # the next source lies elsewhere
    return active, out


def _refine(noise, power, unit, span_deg: float) -> np.ndarray:
    """Per frame, the spectrum's peak on a 1 degree azimuth-elevation patch around ``unit (t, 3)``."""
    offsets = np.radians(np.arange(-span_deg, span_deg + 1e-9, 1.0))
    az = np.arctan2(unit[:, 1], unit[:, 0])[:, None, None] + offsets[None, :, None]
    el = np.arcsin(np.clip(unit[:, 2], -1, 1))[:, None, None] + offsets[None, None, :]
    el = np.clip(el, -np.pi / 2, np.pi / 2)
    cand = np.stack(np.broadcast_arrays(np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)), axis=-1)
    cand = cand.reshape(unit.shape[0], -1, 3)  # (t, C, 3)
    best = np.argmax(music_spectrum(noise, power, cand), axis=1)
    return cand[np.arange(unit.shape[0]), best]
