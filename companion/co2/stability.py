"""What one round of staleness costs: the outer iteration on a quadratic, as a linear map.

Model (one eigen-direction of curvature ``h`` of a quadratic loss, no gradient noise):
τ inner SGD steps of size γ started from an anchor with error ``e`` end at ``(1 − γh)^τ e``,
so the pseudo-gradient is ``Δ = ρ e`` with ``ρ = 1 − (1 − γh)^τ`` (:func:`local_progress`).

Synchronous outer heavy ball (state ``(e_t, m_{t−1})``)::

    m_t = β m_{t−1} + ρ e_t ;            e_{t+1} = e_t − α m_t

One-step-stale outer heavy ball (CO2; state ``(e_t, e_{t−1}, m_{t−1})``)::

    m_t = β m_{t−1} + (ρ/Λ) e_{t−1} ;    e_{t+1} = e_t − α m_t

The error shrinks geometrically iff the spectral radius of the map is below 1, and the
radius is the per-round contraction factor. Clipping is left out: it is not linear.
"""

from __future__ import annotations

import numpy as np

from .outer import check_gap_penalty


def local_progress(curvature: float, inner_lr: float, local_steps: int) -> float:
    """``ρ = 1 − (1 − γh)^τ``: fraction of the error τ inner SGD steps remove (dimensionless)."""
    if local_steps < 1:
        raise ValueError(f"local_steps (τ) must be >= 1, got {local_steps}")
    if curvature <= 0 or inner_lr <= 0:
        raise ValueError(f"curvature h and inner_lr γ must be > 0, got {curvature}, {inner_lr}")
    return 1.0 - (1.0 - inner_lr * curvature) ** local_steps


def outer_iteration_matrix(rho: float, *, outer_lr: float = 1.0, outer_momentum: float = 0.0,
                           gap_penalty: float = 1.0, stale: bool = True) -> np.ndarray:
    """The linear map of one outer round: shape (3, 3) if ``stale`` else (2, 2).

    ``rho`` is ``ρ`` (see the module docstring); ``gap_penalty`` Λ only enters when ``stale``.
    """
    if rho <= 0:
        raise ValueError(f"rho must be > 0 (the local steps must make progress), got {rho}")
    if not 0.0 <= outer_momentum < 1.0:
        raise ValueError(f"outer_momentum (β) must lie in [0, 1), got {outer_momentum}")
    a, b = float(outer_lr), float(outer_momentum)
    if not stale:
        # rows: e_{t+1} = (1 − αρ) e_t − αβ m_{t−1};  m_t = ρ e_t + β m_{t−1}
        return np.array([[1.0 - a * rho, -a * b],
                         [rho, b]])
    c = rho / check_gap_penalty(gap_penalty)
    # rows: e_{t+1} = e_t − αc e_{t−1} − αβ m_{t−1};  e_t = e_t;  m_t = c e_{t−1} + β m_{t−1}
    return np.array([[1.0, -a * c, -a * b],
                     [1.0, 0.0, 0.0],
                     [0.0, c, b]])


def contraction_factor(rho: float, **kwargs) -> float:
    """Spectral radius of :func:`outer_iteration_matrix` (per-round error factor; < 1 converges)."""
    return float(np.max(np.abs(np.linalg.eigvals(outer_iteration_matrix(rho, **kwargs)))))


def stale_contraction_closed_form(c: float) -> float:
    """Closed form for β = 0: the radius of ``z² − z + c`` with ``c = αρ/Λ > 0``.

    Real roots for ``c <= 1/4`` (radius ``(1 + sqrt(1 − 4c))/2``), complex ones beyond
    (radius ``sqrt(c)``, the square root of the product of the roots).
    """
    if c <= 0:
        raise ValueError(f"c = αρ/Λ must be > 0, got {c}")
    return (1.0 + np.sqrt(1.0 - 4.0 * c)) / 2.0 if c <= 0.25 else float(np.sqrt(c))


def best_gap_penalty(rho: float, outer_lr: float = 1.0) -> float:
    """The Λ that minimises the stale radius for β = 0: ``c = αρ/Λ = 1/4``, floored at Λ = 1."""
    return max(1.0, 4.0 * outer_lr * rho)


def estimate_local_progress(delta_products, *, outer_lr: float = 1.0, skip: int = 1) -> float:
    """Estimate ``ρ`` from a synchronous run's consecutive pseudo-gradients (β = 0, no clip).

    On the quadratic of the module docstring the synchronous update with β = 0 gives
    ``Δ_{t+1} = ρ e_{t+1} = ρ (e_t − α Δ_t) = (1 − αρ) Δ_t`` in every eigen-direction, so the
    least-squares ratio ``r = Σ<Δ_t, Δ_{t−1}> / Σ|Δ_{t−1}|²`` estimates ``1 − αρ`` (an average
    over directions weighted by their share of ``|Δ|²``) and ``ρ̂ = (1 − r) / α``.
    ``delta_products`` are ``(<Δ_t, Δ_{t−1}>, |Δ_{t−1}|²)`` pairs
    (:attr:`companion.co2.sync.OuterSync.delta_products`); the first ``skip`` are dropped (the
    first rounds, far from the quadratic regime). Gradient noise makes consecutive Δ less
    aligned than the noise-free model says, which biases ``ρ̂`` upwards.
    """
    pairs = list(delta_products)[skip:]
    if not pairs:
        raise ValueError(f"need at least {skip + 1} pseudo-gradient products, got {len(delta_products)}: "
                         "run more rounds, or pass a smaller skip")
    if not outer_lr > 0:
        raise ValueError(f"outer_lr (α) must be > 0, got {outer_lr!r}")
    dots, norms = np.array(pairs, dtype=np.float64).T
    if not np.all(norms > 0):
        raise ValueError("a pseudo-gradient of zero norm: the run made no progress to measure")
    return float((1.0 - dots.sum() / norms.sum()) / outer_lr)
