"""When does the Ladder residual hide an all-reduce? An event schedule and its closed form.

Module ``j`` computes for ``c_j`` seconds, then its all-reduce occupies the link for ``a_j`` seconds.
The link carries one all-reduce at a time (a network card's queue). The two residual forms differ
only in what module ``j`` waits for before it starts:

- standard: module ``j-1``'s all-reduce (its input contains module ``j-1``'s output);
- Ladder:   module ``j-2``'s all-reduce (its input lacks module ``j-1``'s output).

For equal modules (``c_j = c``, ``a_j = a``, ``n`` modules) the schedule gives

    T_standard = n (c + a)        T_ladder = c + a + (n - 1) max(c, a),

so the Ladder speed-up tends to ``(c + a) / max(c, a) <= 2`` as ``n`` grows.

A parallel block (GPT-J / PaLM) fuses the two modules of a layer: it computes both (``2c``), then
issues one all-reduce of the same size (``a``), waited on before the next layer starts. Nothing
overlaps, but there are half as many all-reduces:

    T_parallel = (n / 2) (2 c + a) = n c + (n / 2) a,

a speed-up over standard of ``(c + a) / (c + a / 2)``, which tends to 2 as ``a / c`` grows, where
the Ladder's tends to 1: a link-bound model gains more from sending less than from hiding it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from companion.comm.events import Schedule


class Interval(NamedTuple):
    """One busy interval of the modelled schedule, in seconds from the start."""

    name: str
    kind: str  # "compute" or "comm"
    start_s: float
    end_s: float


def _check_times(compute_s: Sequence[float], comm_s: Sequence[float]) -> None:
    if len(compute_s) != len(comm_s) or len(compute_s) == 0:
        raise ValueError(
            f"need one compute and one comm time per module, got {len(compute_s)} and {len(comm_s)}"
        )
    if min(compute_s) < 0 or min(comm_s) < 0:
        raise ValueError("compute and comm times are durations: they must be >= 0 seconds")


def schedule(
    compute_s: Sequence[float], comm_s: Sequence[float], *, ladder: bool | Sequence[bool]
) -> list[Interval]:
    """The as-early-as-possible schedule of ``n`` modules and their all-reduces on one link.

    ``compute_s[j]`` and ``comm_s[j]`` are module ``j``'s compute and all-reduce times in seconds.
    ``ladder`` is one flag for every module, or one per module (True: module ``j`` reads the stream
    without module ``j-1``, as :func:`companion.ladder.reads_stale_stream` says for a hybrid).
    Played out by the book's one event model (:class:`companion.comm.Schedule`, one rank whose
    link carries one all-reduce at a time). Returns the compute and comm intervals module by
    module (``h0, AR0, h1, AR1, ...``).
    """
    _check_times(compute_s, comm_s)
    stale = [bool(ladder)] * len(compute_s) if isinstance(ladder, bool) else [bool(f) for f in ladder]
    if len(stale) != len(compute_s):
        raise ValueError(f"need one ladder flag per module: {len(stale)} flags for {len(compute_s)} modules")
    sched = Schedule(1)
    computes: list[int] = []
    reduces: list[int] = []
    for j, (c, a) in enumerate(zip(compute_s, comm_s)):
        lag = 2 if stale[j] else 1  # module j waits for all-reduce j - lag
        # 1. Compute starts when the rank is free and the input's last all-reduce has landed.
        after = ([computes[-1]] if computes else []) + ([reduces[j - lag]] if j >= lag else [])
        computes.append(sched.compute(0, c, after=after, name=f"h{j}"))
        # 2. The all-reduce starts when the output exists and the link is free.
        reduces.append(sched.collective([0], a, after=[computes[-1]], name=f"AR{j}"))
    run = sched.run()
    return [Interval(op.name, "compute" if op.kind == "compute" else "comm", start, end)
            for op, start, end in zip(run.ops, run.start_s, run.end_s)]


def makespan(compute_s: Sequence[float], comm_s: Sequence[float], *, ladder: bool | Sequence[bool]) -> float:
    """Seconds until the last module's all-reduce has landed (the end of :func:`schedule`)."""
    return max(iv.end_s for iv in schedule(compute_s, comm_s, ladder=ladder))


def parallel_schedule(layer_compute_s: Sequence[float], layer_comm_s: Sequence[float]) -> list[Interval]:
    """The schedule of parallel blocks: layer ``i`` computes ``layer_compute_s[i]`` (both modules),
    then its one all-reduce takes ``layer_comm_s[i]``; layer ``i + 1`` starts once it has landed.

    Played out on the same event model as :func:`schedule`; intervals ``L0, AR0, L1, AR1, ...``.
    """
    _check_times(layer_compute_s, layer_comm_s)
    sched = Schedule(1)
    reduces: list[int] = []
    for i, (c, a) in enumerate(zip(layer_compute_s, layer_comm_s)):
        # 1. The layer's input is the stream after the previous layer's all-reduce.
        compute = sched.compute(0, c, after=reduces[-1:], name=f"L{i}")
        # 2. One all-reduce carries the sum of the attention's and the MLP's partial outputs.
        reduces.append(sched.collective([0], a, after=[compute], name=f"AR{i}"))
    run = sched.run()
    return [Interval(op.name, "compute" if op.kind == "compute" else "comm", start, end)
            for op, start, end in zip(run.ops, run.start_s, run.end_s)]


def uniform_parallel_time(c: float, a: float, n: int) -> float:
    """Closed form ``T_parallel = n c + (n / 2) a`` for ``n`` (even) equal modules; see the module docstring."""
    if n < 2 or n % 2:
        raise ValueError(f"parallel blocks pair the modules of a layer: n must be even and >= 2, got n={n}")
    if c < 0 or a < 0:
        raise ValueError(f"compute c={c} and comm a={a} must be >= 0 seconds")
    return n * c + (n // 2) * a


def parallel_speedup(c: float, a: float, n: int) -> float:
    """``T_standard / T_parallel`` for ``n`` equal modules of compute ``c`` and all-reduce ``a`` seconds."""
    t_par = uniform_parallel_time(c, a, n)
    if t_par == 0:
        raise ValueError("c = a = 0: both schedules take no time and the speed-up is undefined")
    return uniform_times(c, a, n)[0] / t_par


def uniform_times(c: float, a: float, n: int) -> tuple[float, float]:
    """Closed forms ``(T_standard, T_ladder)`` for ``n`` equal modules; see the module docstring."""
    if n < 1:
        raise ValueError(f"need at least one module, got n={n}")
    if c < 0 or a < 0:
        raise ValueError(f"compute c={c} and comm a={a} must be >= 0 seconds")
    return n * (c + a), c + a + (n - 1) * max(c, a)


def uniform_speedup(c: float, a: float, n: int) -> float:
    """``T_standard / T_ladder`` for ``n`` equal modules of compute ``c`` and all-reduce ``a`` seconds."""
    t_std, t_ladder = uniform_times(c, a, n)
    if t_ladder == 0:
        raise ValueError("c = a = 0: both schedules take no time and the speed-up is undefined")
    return t_std / t_ladder


def predicted_step_times(no_comm_step_s: float, allreduce_s: float, n: int) -> dict[str, float]:
    """Predicted decode-step seconds of each variant from a measured no-communication step.

    ``no_comm_step_s`` is the measured step without communication (the compute of ``n`` modules
    and the step's overheads), ``allreduce_s`` the link's time ``a`` for one all-reduce. The
    standard model adds ``n a`` (nothing overlaps), the parallel model ``(n / 2) a`` (one
    all-reduce per layer, not overlapped either), and the Ladder follows :func:`uniform_times`
    with ``c = no_comm_step_s / n``, as if the overheads were spread over the modules.
    """
    if no_comm_step_s <= 0 or allreduce_s < 0:
        raise ValueError(f"need no_comm_step_s > 0 and allreduce_s >= 0, got {no_comm_step_s}, {allreduce_s}")
    c = no_comm_step_s / n
    t_std, t_ladder = uniform_times(c, allreduce_s, n)
    return {"standard": t_std, "ladder": t_ladder, "parallel": uniform_parallel_time(c, allreduce_s, n),
            "no-comm": no_comm_step_s}


def latency_for_allreduce_time(target_s: float, nbytes: float, world_size: int, bandwidth_bytes_per_s: float) -> float:
    """The latency ``alpha`` at which a ring all-reduce of ``nbytes`` over ``world_size`` ranks takes ``target_s``.

    Inverts ``2 (p - 1) (alpha + n / (p beta)) = target_s``; raises if the bandwidth term alone exceeds it.
    """
    if world_size < 2:
        raise ValueError(f"an all-reduce over {world_size} rank costs nothing; need world_size >= 2")
    steps = 2 * (world_size - 1)
    alpha = target_s / steps - nbytes / (world_size * bandwidth_bytes_per_s)
    if alpha < 0:
        raise ValueError(
            f"at {bandwidth_bytes_per_s:.3g} bytes/s the all-reduce of {nbytes} bytes alone takes longer "
            f"than target_s={target_s:.3g} s; raise the bandwidth or the target"
        )
    return alpha
