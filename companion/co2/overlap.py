"""When does CO2 hide its communication completely? The full-overlap condition and its uses.

CO2 launches the all-reduce of round ``t`` and needs its result only at the end of round
``t + 1``, so the transfer has a whole round of ``τ`` steps to finish. With ``N`` parameters
of ``b`` bytes each, a link of ``W`` bytes/s and latency ``ℓ``, a ring all-reduce costs
``2·N·b/W + ℓ`` per worker for many workers (``2·(p−1)/p·N·b/W`` for ``p`` workers), and::

    full overlap  ⇔  2·N·b/W + ℓ  <=  τ·T_step

Predicted fraction of the compute-bound rate each method reaches (``c`` = one all-reduce)::

    data-parallel      T / (T + c)            (one blocking all-reduce per step, no bucketing)
    sync local SGD    τT / (τT + c)           (one blocking all-reduce per round)
    CO2               τT / max(τT, c)         (all-reduce overlaps the next round)
"""

from __future__ import annotations

import math

METHODS = ("data_parallel", "local_sgd", "co2")


def _positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (
        value >= 0 if allow_zero else value > 0)
    if not ok:
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r}")
    return float(value)


def check_local_steps(local_steps: int) -> int:
    """Return ``local_steps`` (τ) if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(local_steps, bool) or not isinstance(local_steps, int) or local_steps < 1:
        raise ValueError(f"local_steps (τ) must be an integer >= 1, got {local_steps!r}")
    return local_steps


def allreduce_seconds(n_params: int, *, bytes_per_param: float, bandwidth_bytes_per_s: float,
                      latency_s: float = 0.0, world_size: int | None = None) -> float:
    """Seconds one worker spends in a ring all-reduce of ``n_params`` values.

    ``world_size=None`` is the many-worker limit ``2·N·b/W + ℓ`` of the chapter's condition;
    an integer ``p`` uses the exact ring factor ``2·(p−1)/p`` on the bandwidth term (the
    latency term is kept as one ``ℓ``, as in the condition; see ``companion.comm.Link`` for
    the full α-β ring cost).
    """
    _positive("n_params", n_params)
    _positive("bytes_per_param", bytes_per_param)
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    _positive("latency_s", latency_s, allow_zero=True)
    if world_size is None:
        factor = 2.0
    elif isinstance(world_size, int) and world_size >= 1:
        factor = 2.0 * (world_size - 1) / world_size
    else:
        raise ValueError(f"world_size must be None or an integer >= 1, got {world_size!r}")
    return factor * n_params * bytes_per_param / bandwidth_bytes_per_s + latency_s


def full_overlap(comm_s: float, *, local_steps: int, step_s: float) -> bool:
    """The condition ``comm_s <= τ·T_step``: True when CO2 never waits for the network."""
    _positive("comm_s", comm_s, allow_zero=True)
    _positive("step_s", step_s)
    return comm_s <= check_local_steps(local_steps) * step_s


def min_local_steps(comm_s: float, *, step_s: float) -> int:
    """Smallest τ that satisfies :func:`full_overlap`: ``ceil(comm_s / T_step)``, at least 1."""
    _positive("comm_s", comm_s, allow_zero=True)
    _positive("step_s", step_s)
    return max(1, math.ceil(comm_s / step_s - 1e-12))


def predicted_utilization(method: str, *, comm_s: float, step_s: float,
                          local_steps: int = 1) -> float:
    """Fraction of the compute-bound rate (0-1] that ``method`` reaches (module docstring)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    comm_s = _positive("comm_s", comm_s, allow_zero=True)
    step_s = _positive("step_s", step_s)
    tau = check_local_steps(local_steps)
    if method == "data_parallel":
        return step_s / (step_s + comm_s)
    round_s = tau * step_s
    if method == "local_sgd":
        return round_s / (round_s + comm_s)
    return round_s / max(round_s, comm_s)


def utilization_vs_bandwidth(bandwidths_bytes_per_s, *, n_params: float, bytes_per_param: float,
                             step_s: float, local_steps: int, latency_s: float = 0.0,
                             world_size: int | None = None) -> dict:
    """Predicted utilisation of every method at each bandwidth: ``{method: list of floats}``.

    Data-parallel synchronises every step; local SGD and CO2 every ``local_steps`` steps.
    """
    util: dict = {m: [] for m in METHODS}
    for w in bandwidths_bytes_per_s:
        c = allreduce_seconds(n_params, bytes_per_param=bytes_per_param,
                              bandwidth_bytes_per_s=float(w), latency_s=latency_s,
                              world_size=world_size)
        for m in METHODS:
            tau = 1 if m == "data_parallel" else local_steps
            util[m].append(predicted_utilization(m, comm_s=c, step_s=step_s, local_steps=tau))
    return util
