"""CO2's outer update as pure functions on flat parameter tensors.

Notation of the chapter (and of Sun et al., ICLR 2024, Algorithm 1 as far as it is public):

============  =======================  ===================================================
symbol        argument                 meaning
============  =======================  ===================================================
``a_t``       ``anchor``               outer ("global") parameters every round starts from
``x̄_t``       ``average``              mean over workers of the parameters after τ steps
``Δ_t``       ``pseudo_gradient``      ``a_t − x̄_t``: how far the workers moved, old minus new
``m_t``       ``momentum``             outer momentum buffer
``α``         ``outer_lr``             outer learning rate
``β``         ``outer_momentum``       outer momentum coefficient
``Λ``         ``gap_penalty``          staleness-gap penalty: the stale Δ enters as ``Δ / Λ``
``φ``         ``clip_threshold``       element-wise bound on the outer momentum
============  =======================  ===================================================

One outer step is ``m ← clip_φ(β m + Δ / Λ)`` then ``a ← a − α m``.
With one-step staleness the ``Δ`` used at the end of round ``t`` is ``a_{t−1} − x̄_{t−1}``:
it was measured from the anchor of the previous round and is applied to the current one.

All tensors are 1-D ``float32`` vectors of the model's ``n_params`` parameters (one flat
bucket, which is also what goes on the wire). Functions ending in ``_`` work in place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class OuterConfig:
    """Hyper-parameters of the outer step, validated on construction.

    Parameters
    ----------
    outer_lr : float
        ``α`` > 0. The reference code fixes it to 1.0.
    outer_momentum : float
        ``β`` in [0, 1). The reference code defaults to 0.0-0.6 by world size (SlowMo's table).
    gap_penalty : float
        ``Λ`` >= 1: the stale pseudo-gradient is divided by it. ``Λ < 1`` would *amplify* a
        stale update, which the chapter shows pushes the outer iteration towards instability.
    clip_threshold : float or None
        ``φ`` > 0, element-wise bound on the outer momentum; ``None`` turns clipping off.
    """

    outer_lr: float = 1.0  # α = 1 is the reference code's only value (not exposed there)
    outer_momentum: float = 0.0  # β: SlowMo's table gives 0.0 for <= 16 workers
    gap_penalty: float = 1.0  # Λ = 1 means "no penalty"; the reference default
    clip_threshold: float | None = None  # φ; the reference default is 1.0 with clipping off

    def __post_init__(self) -> None:
        if not (isinstance(self.outer_lr, (int, float)) and math.isfinite(self.outer_lr)
                and self.outer_lr > 0):
            raise ValueError(f"outer_lr (α) must be a finite number > 0, got {self.outer_lr!r}")
        if not (isinstance(self.outer_momentum, (int, float))
                and 0.0 <= self.outer_momentum < 1.0):
            raise ValueError(
                f"outer_momentum (β) must lie in [0, 1), got {self.outer_momentum!r}; "
                "β >= 1 makes the momentum buffer grow without bound")
        check_gap_penalty(self.gap_penalty)
        if self.clip_threshold is not None:
            check_clip_threshold(self.clip_threshold)


def check_gap_penalty(gap_penalty: float) -> float:
    """Return ``gap_penalty`` if it is a finite number >= 1, else raise ``ValueError``."""
    if not (isinstance(gap_penalty, (int, float)) and math.isfinite(gap_penalty)
            and gap_penalty >= 1.0):
        raise ValueError(
            f"gap_penalty (Λ) must be a finite number >= 1, got {gap_penalty!r}; the stale "
            "pseudo-gradient is divided by Λ, so Λ < 1 would enlarge it; use 1 for no penalty")
    return float(gap_penalty)


def check_clip_threshold(clip_threshold: float) -> float:
    """Return ``clip_threshold`` if it is a finite number > 0, else raise ``ValueError``."""
    if not (isinstance(clip_threshold, (int, float)) and math.isfinite(clip_threshold)
            and clip_threshold > 0):
        raise ValueError(
            f"clip_threshold (φ) must be a finite number > 0, got {clip_threshold!r}; "
            "pass None to turn outer-momentum clipping off")
    return float(clip_threshold)


def pseudo_gradient(anchor: torch.Tensor, average: torch.Tensor) -> torch.Tensor:
    """``Δ = anchor − average`` (old minus new: a descent direction), shape ``(n_params,)``."""
    if anchor.shape != average.shape:
        raise ValueError(f"anchor has shape {tuple(anchor.shape)} but average has "
                         f"{tuple(average.shape)}; both must be the flat parameter vector")
    return anchor - average


def momentum_update_(momentum: torch.Tensor, delta: torch.Tensor, *, outer_momentum: float,
                     gap_penalty: float = 1.0) -> torch.Tensor:
    """In place ``m ← β m + Δ / Λ``; returns ``momentum``."""
    check_gap_penalty(gap_penalty)
    return momentum.mul_(outer_momentum).add_(delta, alpha=1.0 / gap_penalty)


def clip_outer_momentum_(momentum: torch.Tensor, clip_threshold: float | None) -> torch.Tensor:
    """Clamp every entry of ``momentum`` to ``[−φ, φ]`` **in place**; ``None`` leaves it as is.

    The in-place ``clamp_`` is the whole point: the reference implementation calls the
    out-of-place ``torch.clamp`` and drops its result (see :func:`reference_code_clip`).
    """
    if clip_threshold is None:
        return momentum
    phi = check_clip_threshold(clip_threshold)
    return momentum.clamp_(min=-phi, max=phi)


def reference_code_clip(momentum: torch.Tensor, clip_threshold: float) -> None:
    """Reproduce the clipping of the public CO2 code, defect included, for the tests and book.

    ``weigao266/fairscale-CO2`` (``co2.py``, ``_co2_clip``) calls ``torch.clamp(m, -φ, φ)``,
    which *returns a new tensor*; the result is discarded, so ``m`` is never clipped even
    when ``--co2-clip`` is set. This function does exactly that and returns nothing.
    """
    check_clip_threshold(clip_threshold)
    torch.clamp(momentum, min=-clip_threshold, max=clip_threshold)


def outer_step_(anchor: torch.Tensor, momentum: torch.Tensor, delta: torch.Tensor, *,
                config: OuterConfig, stale: bool) -> torch.Tensor:
    """One outer step in place: ``m ← clip_φ(β m + Δ/Λ)``, ``a ← a − α m``; returns ``anchor``.

    ``stale=True`` means ``delta`` was measured from the previous round's anchor (CO2), and the
    penalty ``Λ`` applies; ``stale=False`` is synchronous local SGD, where there is no
    staleness gap to penalise, so ``Λ`` is not used.
    """
    if not (anchor.shape == momentum.shape == delta.shape):
        raise ValueError(f"shapes differ: anchor {tuple(anchor.shape)}, momentum "
                         f"{tuple(momentum.shape)}, delta {tuple(delta.shape)}")
    penalty = config.gap_penalty if stale else 1.0
    momentum_update_(momentum, delta, outer_momentum=config.outer_momentum, gap_penalty=penalty)
    clip_outer_momentum_(momentum, config.clip_threshold)
    return anchor.sub_(momentum, alpha=config.outer_lr)
