"""When does CO2 hide its communication completely? The full-overlap condition and its uses.

CO2 launches the all-reduce of round ``t`` and needs its result only at the end of round
``t + 1``, so the transfer has a whole round of ``τ`` steps to finish. With ``N`` parameters
of ``b`` bytes each, a link of ``W`` bytes/s and latency ``ℓ``, a ring all-reduce over ``p``
workers costs ``c = 2·(p−1)·(ℓ + N·b/(p·W))`` per worker (:meth:`companion.comm.Link.allreduce_time`:
latency enters once per ring step), which tends to ``2·N·b/W`` for many workers when ``ℓ = 0``,
and::

    full overlap  ⇔  c  <=  τ·T_step

Predicted fraction of the compute-bound rate each method reaches::

    data-parallel      T / (T + max(0, c − (2/3)·T))   (bucketed: hides behind the backward pass)
    sync local SGD    τT / (τT + c)                    (one blocking all-reduce per round)
    CO2               τT / max(τT, c)                  (all-reduce overlaps the next round)

Data-parallel's line is the book's one utilisation model,
:func:`companion.comm.data_parallel_utilization`; ``bucketed=False`` is one blocking
all-reduce after the backward pass, ``T / (T + c)``. This chapter's workers run PyTorch's DDP
(:func:`companion.lm.ddp.wrap`), whose buckets start during the backward pass but after its
first layers, so what they hide lies between the two lines. :func:`simulate_rounds` plays the three schedules out
in the book's one event model (:class:`companion.comm.Schedule`); its steady state is the
table above (tested).
"""

from __future__ import annotations

import math

from companion.comm import Link, Run, Schedule, data_parallel_utilization

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

    An integer ``world_size`` ``p`` gives the ring's cost ``2·(p−1)·(ℓ + N·b/(p·W))``
    (:meth:`companion.comm.Link.allreduce_time`). ``world_size=None`` is the many-worker limit
    ``2·N·b/W`` of the bandwidth term; the latency term ``2·(p−1)·ℓ`` has no such limit, so
    a positive ``latency_s`` then needs ``world_size``.
    """
    _positive("n_params", n_params)
    _positive("bytes_per_param", bytes_per_param)
    _positive("bandwidth_bytes_per_s", bandwidth_bytes_per_s)
    _positive("latency_s", latency_s, allow_zero=True)
    nbytes = n_params * bytes_per_param
    if world_size is None:
        if latency_s > 0:
            raise ValueError(f"latency_s={latency_s!r} needs a world_size: a ring all-reduce pays it "
                             "2·(p−1) times, which grows without limit; pass world_size=p")
        return 2.0 * nbytes / bandwidth_bytes_per_s
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be None or an integer >= 1, got {world_size!r}")
    return Link(latency_s, bandwidth_bytes_per_s).allreduce_time(nbytes, world_size)


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
                          local_steps: int = 1, bucketed: bool = True) -> float:
    """Fraction of the compute-bound rate (0-1] that ``method`` reaches (module docstring).

    ``bucketed`` applies to ``data_parallel`` only: True hides the all-reduce behind the
    backward pass (:func:`companion.comm.data_parallel_utilization`), False hides nothing.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    comm_s = _positive("comm_s", comm_s, allow_zero=True)
    step_s = _positive("step_s", step_s)
    tau = check_local_steps(local_steps)
    if method == "data_parallel":
        return data_parallel_utilization(step_s, comm_s, bucketed=bucketed)
    round_s = tau * step_s
    if method == "local_sgd":
        return round_s / (round_s + comm_s)
    return round_s / max(round_s, comm_s)


def simulate_rounds(method: str, *, comm_s: float, step_s: float, local_steps: int = 1,
                    n_rounds: int = 8, bucketed: bool = True) -> Run:
    """Play ``n_rounds`` rounds of ``method`` out in the one event model (one worker, one link).

    A round computes ``τ·T`` seconds (data-parallel: one step, its forward ``T/3`` then its
    backward ``2T/3``) and ends with one all-reduce of ``comm_s`` seconds on the link:

    - ``data_parallel``: the all-reduce starts with the backward when ``bucketed`` (after it
      otherwise); the next step waits for it;
    - ``local_sgd``: the next round waits for the all-reduce of this one;
    - ``co2``: the next round waits only for the all-reduce launched one round earlier.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    comm_s = _positive("comm_s", comm_s, allow_zero=True)
    step_s = _positive("step_s", step_s)
    tau = 1 if method == "data_parallel" else check_local_steps(local_steps)
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 3:
        raise ValueError(f"n_rounds must be an integer >= 3, got {n_rounds!r}")
    sched = Schedule(1)
    computes: list[int] = []
    reduces: list[int] = []
    for t in range(n_rounds):
        after = computes[-1:]
        if method == "local_sgd" and reduces:
            after = after + reduces[-1:]
        if method == "co2" and len(reduces) >= 2:
            after = after + [reduces[-2]]
        if method == "data_parallel":
            after = after + reduces[-1:]
            forward = sched.compute(0, step_s / 3, after=after, name=f"forward {t}")
            backward = sched.compute(0, 2 * step_s / 3, after=[forward], name=f"backward {t}")
            computes.append(backward)
            start_with = forward if bucketed else backward
            reduces.append(sched.collective([0], comm_s, after=[start_with], name=f"all_reduce {t}"))
            continue
        computes.append(sched.compute(0, tau * step_s, after=after, name=f"round {t}"))
        reduces.append(sched.collective([0], comm_s, after=computes[-1:], name=f"all_reduce {t}"))
    return sched.run()


def simulated_utilization(method: str, *, comm_s: float, step_s: float, local_steps: int = 1,
                          n_rounds: int = 8, bucketed: bool = True) -> float:
    """Steady-state share of time computing in :func:`simulate_rounds`: a round's compute over
    the mean time between round starts in the second half of the run."""
    run = simulate_rounds(method, comm_s=comm_s, step_s=step_s, local_steps=local_steps,
                          n_rounds=n_rounds, bucketed=bucketed)
    first = "forward" if method == "data_parallel" else "round"
    starts = [s for op, s in zip(run.ops, run.start_s) if op.name.startswith(first)]
    half = len(starts) // 2
    period = (starts[-1] - starts[half]) / (len(starts) - 1 - half)
    tau = 1 if method == "data_parallel" else local_steps
    return tau * step_s / period


def utilization_vs_bandwidth(bandwidths_bytes_per_s, *, n_params: float, bytes_per_param: float,
                             step_s: float, local_steps: int, latency_s: float = 0.0,
                             world_size: int | None = None, bucketed: bool = True) -> dict:
    """Predicted utilisation of every method at each bandwidth: ``{method: list of floats}``.

    Data-parallel synchronises every step (``bucketed``: see :func:`predicted_utilization`);
    local SGD and CO2 every ``local_steps`` steps.
    """
    util: dict = {m: [] for m in METHODS}
    for w in bandwidths_bytes_per_s:
        c = allreduce_seconds(n_params, bytes_per_param=bytes_per_param,
                              bandwidth_bytes_per_s=float(w), latency_s=latency_s,
                              world_size=world_size)
        for m in METHODS:
            tau = 1 if m == "data_parallel" else local_steps
            util[m].append(predicted_utilization(m, comm_s=c, step_s=step_s, local_steps=tau,
                                                 bucketed=bucketed))
    return util


def timelines(*, comm_s: float, step_s: float, local_steps: int, horizon_steps: int = 32,
              bucketed: bool = True) -> dict:
    """Every method's :func:`simulate_rounds` played for at least ``horizon_steps`` steps.

    Returns ``{method: list of Span}`` (seconds), one worker each, in :data:`METHODS` order:
    data-parallel runs ``horizon_steps`` rounds of one step, local SGD and CO2
    ``ceil(horizon_steps / local_steps)`` rounds of ``local_steps`` steps (at least 3), so the
    three timelines cover the same compute and can share one time axis.
    """
    if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, int) or horizon_steps < 3:
        raise ValueError(f"horizon_steps must be an integer >= 3, got {horizon_steps!r}")
    tau = check_local_steps(local_steps)
    out = {}
    for m in METHODS:
        rounds = horizon_steps if m == "data_parallel" else max(3, math.ceil(horizon_steps / tau))
        out[m] = simulate_rounds(m, comm_s=comm_s, step_s=step_s, local_steps=tau,
                                 n_rounds=rounds, bucketed=bucketed).spans()
    return out
