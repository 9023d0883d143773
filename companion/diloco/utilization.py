"""Compute utilisation of (Streaming) DiLoCo and data-parallel training as a function of bandwidth.

A closed form, derived in the chapter's third notebook. Every method repeats the same pattern:
``K`` steps of pure compute (``T`` seconds each), then a sync that sends ``S`` bits over a link of
``W`` bits/s. The sync starts while the last backward pass still runs (it reduces layer by layer
behind it, a fraction ``2/3`` of a step by the 6N FLOP rule) and, with ``tau`` overlapped steps,
may also run behind the next ``tau`` steps. Only the rest of it is exposed::

    exposed = max(0, S / W - (2/3 + tau) T)
    CU      = K T / (K T + exposed)
    W(CU)   = S / ((2/3 + tau) T + K T (1 / CU - 1))

with, for ``N`` parameters, ``L`` layers, ``P = L / layers_per_fragment`` fragments and ``b`` bits
per value:

===========================  ========  ===========  ==========
method                        K         S            tau
===========================  ========  ===========  ==========
``data_parallel``             1         b N          0
``diloco``                    H         b N          0
``streaming``                 H / P     b N / P      0
``streaming_overlap``         H / P     b N / P      tau
``streaming_overlap_fp4``     H / P     4 N / P      tau
===========================  ========  ===========  ==========

``b`` is 16 (bf16) except for the FP4 variant. Bandwidths are in Gbit/s (1e9 bits/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.comm.cost_model import DATA_PARALLEL_HIDDEN_FRACTION

METHODS = ("data_parallel", "diloco", "streaming", "streaming_overlap", "streaming_overlap_fp4")

#: Share of a step a sync can hide behind without overlapped steps: the backward pass, 2/3 of
#: the step. It is the book's one answer for data-parallel training,
#: :data:`companion.comm.DATA_PARALLEL_HIDDEN_FRACTION` (see its reason there); a (Streaming)
#: DiLoCo sync reduces layer by layer behind the last backward the same way.
BACKWARD_FRACTION = DATA_PARALLEL_HIDDEN_FRACTION
#: Bits per communicated value: bf16 unless the method quantises to 4-bit floats.
DEFAULT_BITS = 16
FP4_BITS = 4


@dataclass(frozen=True)
class SyncPattern:
    """What one sync of a method costs.

    Attributes
    ----------
    steps_between_syncs : float
        ``K``, compute steps from one sync to the next (fractional when ``P`` does not divide ``H``).
    bits_per_sync : float
        ``S``, bits each worker sends in one sync.
    hideable_s : float
        Seconds of compute a sync can run behind: ``(2/3 + tau) T``.
    step_time_s : float
        ``T``, seconds of one compute step.
    """

    steps_between_syncs: float
    bits_per_sync: float
    hideable_s: float
    step_time_s: float


def sync_pattern(
    method: str,
    n_params: float,
    n_layers: int,
    step_time_s: float,
    *,
    H: int = 100,
    layers_per_fragment: int = 3,
    tau: int = 1,
    bits: int | None = None,
) -> SyncPattern:
    """The ``(K, S, window)`` of ``method``; see the module docstring for the table.

    ``H`` is DiLoCo's number of inner steps between syncs of one fragment, ``layers_per_fragment``
    sets ``P = n_layers / layers_per_fragment``, ``tau`` is the number of overlapped inner steps
    (used by the ``*_overlap*`` methods only) and ``bits`` overrides the bits per value.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not n_params > 0:
        raise ValueError(f"n_params must be > 0, got {n_params!r}")
    if not step_time_s > 0:
        raise ValueError(f"step_time_s must be > 0 seconds, got {step_time_s!r}")
    if n_layers < 1 or H < 1:
        raise ValueError(f"n_layers and H must be >= 1, got n_layers={n_layers}, H={H}")
    if not 1 <= layers_per_fragment <= n_layers:
        raise ValueError(
            f"layers_per_fragment must be in [1, n_layers={n_layers}], got {layers_per_fragment}"
        )
    if bits is not None and bits < 1:
        raise ValueError(f"bits must be a positive number of bits per value, got {bits}")
    b = bits if bits is not None else (FP4_BITS if method.endswith("fp4") else DEFAULT_BITS)
    T = float(step_time_s)
    if method == "data_parallel":
        return SyncPattern(1.0, b * n_params, BACKWARD_FRACTION * T, T)
    if method == "diloco":
        return SyncPattern(float(H), b * n_params, BACKWARD_FRACTION * T, T)
    P = n_layers / layers_per_fragment  # fragments; 24 layers / 3 = 8 for the paper's 1B model
    K = H / P
    overlapped = method.startswith("streaming_overlap")
    if overlapped and not 0 <= tau < K:
        raise ValueError(f"tau must satisfy 0 <= tau < H / P = {K:g} (one fragment in flight), got {tau}")
    window = (BACKWARD_FRACTION + (tau if overlapped else 0)) * T
    return SyncPattern(K, b * n_params / P, window, T)


def overlap_conflict(H: int, n_layers: int, layers_per_fragment: int, tau: int) -> tuple[str, str] | None:
    """Why the overlapped methods have no schedule at these settings: ``(what, why)``, or ``None``.

    A fragment leaves every ``K = H / P`` steps (``P = n_layers / layers_per_fragment``) and its
    sync overlaps ``tau`` steps, so it lands ``tau`` steps after it left. With ``tau >= K`` the
    next fragment would leave before it landed: two syncs in flight on one link, which the
    schedule forbids (torchft's does too) and the model, one sync per ``K`` steps with the link to
    itself, does not describe. :func:`sync_pattern` raises in that case; figures call this instead
    and print the two lines (``what``: the values; ``why``: the constraint and the fix).
    """
    K = H / (n_layers / layers_per_fragment)  # as sync_pattern computes it, to agree at the edge
    if 0 <= tau < K:
        return None
    what = f"τ = {tau} is not below H/P = {K:g}: no overlapped schedule, its curves are not drawn"
    why = (f"a fragment leaves every H/P steps and lands τ steps later, so τ < H/P keeps one in "
           f"flight; lower τ, or raise H or the layers per fragment")
    return what, why


def utilization(
    method: str,
    bandwidth_gbps,
    n_params: float,
    n_layers: int,
    step_time_s: float,
    *,
    H: int = 100,
    layers_per_fragment: int = 3,
    tau: int = 1,
    bits: int | None = None,
    latency_s: float = 0.0,
):
    """Compute utilisation ``CU = K T / (K T + exposed)`` at ``bandwidth_gbps`` (scalar or array).

    ``latency_s`` adds a fixed cost to every sync: the sync's whole latency, ``2 (p - 1) alpha``
    for a ring all-reduce over ``p`` workers (:meth:`companion.comm.Link.allreduce_time`).
    For ``data_parallel`` this is :func:`companion.comm.data_parallel_utilization`. Returns a float for a scalar bandwidth, else
    an array of the same shape, each value in ``(0, 1]``.
    """
    if latency_s < 0:
        raise ValueError(f"latency_s must be >= 0, got {latency_s}")
    pat = sync_pattern(
        method, n_params, n_layers, step_time_s, H=H, layers_per_fragment=layers_per_fragment, tau=tau, bits=bits
    )
    W = np.asarray(bandwidth_gbps, dtype=float) * 1e9  # bits/s
    if np.any(W <= 0):
        raise ValueError("bandwidth_gbps must be > 0")
    exposed = np.maximum(0.0, pat.bits_per_sync / W + latency_s - pat.hideable_s)
    compute = pat.steps_between_syncs * pat.step_time_s
    cu = compute / (compute + exposed)
    return float(cu) if np.ndim(cu) == 0 else cu


def required_bandwidth_gbps(
    method: str,
    n_params: float,
    n_layers: int,
    step_time_s: float,
    target_utilization: float,
    *,
    H: int = 100,
    layers_per_fragment: int = 3,
    tau: int = 1,
    bits: int | None = None,
) -> float:
    """Smallest bandwidth (Gbit/s) at which ``method`` reaches ``target_utilization``.

    Inverts :func:`utilization` (without latency): ``W = S / (window + K T (1/CU - 1))``.

    >>> round(required_bandwidth_gbps("diloco", 1e9, 24, 0.1, 0.5), 2)
    1.59
    """
    if not 0 < target_utilization <= 1:
        raise ValueError(f"target_utilization must be in (0, 1], got {target_utilization!r}")
    pat = sync_pattern(
        method, n_params, n_layers, step_time_s, H=H, layers_per_fragment=layers_per_fragment, tau=tau, bits=bits
    )
    slack = pat.steps_between_syncs * pat.step_time_s * (1.0 / target_utilization - 1.0)
    return pat.bits_per_sync / (pat.hideable_s + slack) / 1e9
