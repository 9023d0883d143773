"""A per-layer event simulation of compute utilisation: where the closed form's 99 % column fails.

The closed form (:mod:`companion.diloco.utilization`) treats a sync as one block that may hide
behind ``(2/3 + tau)`` of a step. Real schedules are per layer: a step runs the forward of layers
``0..L-1`` (``T / 3L`` seconds each, by the 6N rule) then their backward in reverse
(``2T / 3L`` each). A layer's reduction can leave as soon as its backward is done; the link sends
one message at a time, in order; and the forward of that layer ``1 + tau`` steps later must wait
for it. The last layer to finish its backward is layer 0, which is also the first the next
forward needs, so with ``tau = 0`` its reduction can hide behind nothing. That tail is invisible
at 50-95 % utilisation and dominant at 99 %.

Which layers a Streaming sync carries depends on the fragment pattern
(:func:`companion.diloco.fragments.layer_assignment`): *sequential* fragments hold neighbouring
layers, so fragment 0 holds the first ``layers_per_fragment`` layers, all finishing their backward
last and all needed first by the next forward; *strided* fragments hold layers ``P`` apart, so no
fragment holds two early layers.

The schedule is played out by the book's one event model (:class:`companion.comm.Schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.comm.events import Run, Schedule
from companion.comm.timeline import Span
from companion.diloco.fragments import PATTERNS, layer_assignment
from companion.diloco.utilization import DEFAULT_BITS, FP4_BITS, METHODS


def _check_layers(method: str, n_layers: int, layers_per_fragment: int, pattern: str) -> None:
    """Reject what the simulation cannot play out, naming the value and the fix.

    Only the streaming methods cut layers into fragments, so only they need
    ``layers_per_fragment`` to divide ``n_layers``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if pattern not in PATTERNS:
        raise ValueError(
            f"pattern={pattern!r} is not a fragment pattern; use one of {PATTERNS} "
            "('strided' is the paper's default)"
        )
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    lpf = layers_per_fragment
    if isinstance(lpf, bool) or not isinstance(lpf, (int, np.integer)) or not 1 <= lpf <= n_layers:
        raise ValueError(f"layers_per_fragment must be an int in [1, n_layers={n_layers}], got {lpf!r}")
    if method.startswith("streaming") and n_layers % lpf:
        divisors = [d for d in range(1, n_layers + 1) if n_layers % d == 0]
        raise ValueError(
            f"n_layers={n_layers} is not divisible by layers_per_fragment={lpf}: the layers do not "
            f"cut into fragments of {lpf} (the simulation syncs whole, equal fragments); choose "
            f"layers_per_fragment among the divisors of {n_layers}: {divisors}"
        )


@dataclass(frozen=True)
class LayerRun:
    """A played-out per-layer schedule: ``run`` (:class:`companion.comm.events.Run`, seconds),
    the ``n_steps`` simulated steps of ``step_time_s`` seconds each, and ``layer_fragment``, the
    fragment each layer belongs to (all 0 for data-parallel and DiLoCo)."""

    run: Run
    n_steps: int
    step_time_s: float
    layer_fragment: tuple[int, ...]

    @property
    def utilization(self) -> float:
        """``n T / makespan``: merged compute sums round differently from per-layer ones, so the
        last ulp above 1 is clipped."""
        return min(1.0, self.n_steps * self.step_time_s / self.run.makespan_s)

    def lanes(self, *, by_fragment: bool = True) -> dict[str, list[Span]]:
        """The run's spans in Gantt lanes: ``"compute"``, then one lane of messages per fragment
        (``"fragment p"``) or, with ``by_fragment=False``, one ``"link"`` lane."""
        spans = self.run.spans()
        lanes: dict[str, list[Span]] = {"compute": [s for s in spans if s.kind == "compute"]}
        if not by_fragment:
            lanes["link"] = [s for s in spans if s.kind == "comm"]
            return lanes
        for p in sorted(set(self.layer_fragment)):
            lanes[f"fragment {p}"] = []
        for s in spans:
            if s.kind == "comm":
                layer = int(s.name.split()[-1])
                lanes[f"fragment {self.layer_fragment[layer]}"].append(s)
        return lanes


def play(
    method: str,
    bandwidth_gbps: float,
    n_params: float,
    n_layers: int,
    step_time_s: float,
    *,
    H: int = 100,
    layers_per_fragment: int = 3,
    tau: int = 1,
    pattern: str = "strided",
    n_rounds: int = 2,
    per_layer: bool = False,
) -> LayerRun:
    """Play out ``n`` steps of ``method`` at ``bandwidth_gbps`` and return the :class:`LayerRun`.

    Parameters are those of :func:`~companion.diloco.utilization.utilization` (``bandwidth_gbps``
    in Gbit/s, ``step_time_s`` in seconds). Parameters are spread evenly over the ``n_layers``
    layers. Streaming methods cut the layers into ``P = n_layers / layers_per_fragment``
    fragments, which must be whole (``layers_per_fragment`` must divide ``n_layers``), in the
    given ``pattern`` (``"strided"``, the paper's default, or ``"sequential"``), and sync one every
    ``H // P`` steps (the paper's simulator rounds the same way: 11 steps for the 1B model's 8
    fragments plus embeddings, 12 here without them). ``n_rounds`` times the longest sync period
    is simulated. ``per_layer=True`` keeps one compute op per layer's forward (``"fwd l"``) and
    backward (``"bwd l"``), for a Gantt chart; by default runs of layers with nothing to wait for
    or send are merged into one op, which changes no time (the schedule has no contention).
    """
    _check_layers(method, n_layers, layers_per_fragment, pattern)
    if not bandwidth_gbps > 0 or not step_time_s > 0 or not n_params > 0:
        raise ValueError("bandwidth_gbps, step_time_s and n_params must be > 0")
    if not isinstance(n_rounds, int) or n_rounds < 1:
        raise ValueError(f"n_rounds must be a positive int, got {n_rounds!r}")
    L = int(n_layers)
    bits = FP4_BITS if method.endswith("fp4") else DEFAULT_BITS
    layer_s = bits * n_params / L / (bandwidth_gbps * 1e9)  # seconds to send one layer's values
    fwd, bwd = step_time_s / (3 * L), 2 * step_time_s / (3 * L)
    delay = tau if method.startswith("streaming_overlap") else 0

    # which layers sync after each step (a function of the step index only)
    layer_fragment = [0] * L
    if method == "data_parallel":
        period, syncs = 1, {0: tuple(range(L))}
    elif method == "diloco":
        period, syncs = H, {H - 1: tuple(range(L))}
    else:
        P = L // layers_per_fragment
        K = max(1, H // P)
        if not 0 <= delay < K:
            raise ValueError(f"tau must satisfy 0 <= tau < H // P = {K}, got {tau}")
        groups = layer_assignment(L, P, pattern)
        period, syncs = K * P, {(p + 1) * K - 1: groups[p] for p in range(P)}
        for p, group in enumerate(groups):
            for layer in group:
                layer_fragment[layer] = p
    n_steps = n_rounds * period

    # The run as operations of the book's one event model (one rank, one link).
    sched = Schedule(1)
    gate: dict[tuple[int, int], int] = {}  # (step, layer) -> the send its forward waits for
    last: list[int] = []  # the compute op the next one follows
    pending = [0.0, [], ""]  # compute not yet added (s), what it waits for, its name

    def flush() -> None:
        if pending[0] > 0 or pending[1]:
            last[:] = [sched.compute(0, pending[0], after=last + pending[1], name=pending[2])]
        pending[0], pending[1], pending[2] = 0.0, [], ""

    def add(seconds: float, name: str) -> None:
        if per_layer and pending[0] > 0:
            flush()
        pending[0] += seconds
        pending[2] = pending[2] or name

    gated_steps: set[int] = set()
    for s in range(n_steps):
        sending = set(syncs.get(s % period, ()))
        if not per_layer and not sending and s not in gated_steps:
            add(L * (fwd + bwd), f"step {s}")  # nothing to wait for or send
            continue
        for layer in range(L):
            if (s, layer) in gate:  # this forward waits for its layer's (outer) reduction
                flush()
                pending[1] = [gate[s, layer]]
            add(fwd, f"fwd {layer}")
        for layer in reversed(range(L)):
            add(bwd, f"bwd {layer}")
            if layer in sending:  # its (outer) gradient leaves now, behind what is queued
                flush()
                gate[s + 1 + delay, layer] = sched.collective([0], layer_s, after=last, name=f"sync {layer}")
                gated_steps.add(s + 1 + delay)
    flush()
    return LayerRun(sched.run(), n_steps, float(step_time_s), tuple(layer_fragment))


def simulate_utilization(method: str, bandwidth_gbps: float, n_params: float, n_layers: int,
                         step_time_s: float, **kwargs) -> float:
    """Compute utilisation ``n T / makespan`` of the steps :func:`play` simulates.

    The run ends when the last compute step and every message in flight are done. Keyword
    arguments are those of :func:`play` (``H``, ``layers_per_fragment``, ``tau``, ``pattern``,
    ``n_rounds``).
    """
    return play(method, bandwidth_gbps, n_params, n_layers, step_time_s, **kwargs).utilization


def simulated_required_bandwidth_gbps(
    method: str,
    n_params: float,
    n_layers: int,
    step_time_s: float,
    target_utilization: float,
    *,
    H: int = 100,
    layers_per_fragment: int = 3,
    tau: int = 1,
    pattern: str = "strided",
    lo_gbps: float = 1e-3,
    hi_gbps: float = 1e5,
    iterations: int = 36,
) -> float:
    """Smallest bandwidth (Gbit/s) at which :func:`simulate_utilization` reaches the target.

    Bisection in log space between ``lo_gbps`` and ``hi_gbps``: ``iterations`` halvings leave
    the answer within a factor ``(hi_gbps / lo_gbps) ** (2 ** -iterations)`` above the true
    threshold (36: about 3e-10 relative; 20, for a figure, about 2e-5).
    """
    if not 0 < target_utilization < 1:
        raise ValueError(f"target_utilization must be in (0, 1), got {target_utilization!r}")
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    kw = dict(H=H, layers_per_fragment=layers_per_fragment, tau=tau, pattern=pattern)

    def cu(w):
        return simulate_utilization(method, w, n_params, n_layers, step_time_s, **kw)

    if cu(hi_gbps) < target_utilization:
        raise ValueError(f"{method} does not reach {target_utilization} even at {hi_gbps} Gbit/s")
    lo, hi = np.log(lo_gbps), np.log(hi_gbps)
    for _ in range(iterations):  # the interval shrinks 2**iterations-fold
        mid = 0.5 * (lo + hi)
        if cu(np.exp(mid)) >= target_utilization:
            hi = mid
        else:
            lo = mid
    return float(np.exp(hi))
