"""An event-driven model of the three schedules: what the closed form abstracts, step by step.

It replays, in model time, exactly what a rank of :mod:`companion.t3.schedules` does:

1. the GEMM runs its groups back to back (:class:`~companion.t3.layout.ScheduleLayout`);
2. a row chunk's send fires the moment its counter is full: its own GEMM rows are written and,
   past ring step 0, the partial sum from the left neighbour has arrived and been added; the
   firing thread then spends ``issue_s`` handing the send to the link;
3. one link clock per rank serialises the sends (start = max(fire time, link free));
4. a GEMM group is stretched by ``contention`` times its overlap with transfers in flight,
   the rule of :class:`companion.comm.ModelledLink`;
5. the partial a rank receives for its chunk ``(s+1, j)`` lands when its left neighbour's send
   of ``(s, j)`` completes.  :func:`simulate_ring` gives each rank its own GEMM times;
   :func:`simulate_schedule` makes all ranks alike.

With one chunk per ring step and no contention it reproduces
:func:`~companion.t3.pipeline_model.pipelined_time` exactly (tested).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Sequence

from companion.comm import Span

from .layout import ScheduleLayout, block_of

__all__ = ["ScheduleTrace", "simulate_ring", "simulate_schedule", "trace_spans"]


@dataclass(frozen=True)
class ScheduleTrace:
    """The modelled run of every rank.

    Attributes
    ----------
    total_s : float
        Seconds until the last rank holds its reduced block and every send has completed.
    events : tuple of (rank, name, kind, start_s, end_s, item)
        Compute groups (``kind="compute"``, ``item=None``), reductions (``"compute"``) and sends
        (``"comm"``), relative to time 0.
    """

    layout: ScheduleLayout
    total_s: float
    events: tuple[tuple[int, str, str, float, float, tuple | None], ...]


def _overlap(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    """Length of [start, end] covered by the union of ``intervals``."""
    covered, cursor = 0.0, start
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            covered += hi - lo
            cursor = hi
    return covered


def _check(layout: ScheduleLayout, group_s, step_s, reduce_s, contention, issue_s) -> None:
    if len(group_s) != len(layout.groups):
        raise ValueError(f"group_s needs {len(layout.groups)} durations (one per GEMM group), got {len(group_s)}")
    for name, value in (("step_s", step_s), ("reduce_s", reduce_s), ("contention", contention),
                        ("issue_s", issue_s), *((f"group_s[{i}]", t) for i, t in enumerate(group_s))):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")


def simulate_ring(
    layout: ScheduleLayout,
    group_s: Sequence[Sequence[float]],
    step_s: float,
    *,
    reduce_s: float = 0.0,
    contention: float = 0.0,
    issue_s: Sequence[float] | None = None,
    wake_s: Sequence[float] | None = None,
) -> ScheduleTrace:
    """Model every rank of ``layout``, each with its own GEMM times.

    Parameters
    ----------
    layout : ScheduleLayout
        The schedule's GEMM groups.
    group_s : sequence (one per rank) of sequences of float
        Seconds each GEMM group takes on that rank (one per ``layout.groups``).
    step_s : float
        Seconds one row chunk keeps the link busy (``alpha + chunk_bytes / beta``).
    reduce_s : float
        Seconds to add one received partial chunk into the local one.
    contention : float
        ``c >= 0``: a GEMM group lasts ``t + c * overlap`` with its rank's transfers in flight.
    issue_s : sequence of float, one per rank, or None
        Seconds the firing thread spends handing a send to the link (software overhead; a
        hardware trigger such as T3's makes it ~0).  None: 0 on every rank.
    wake_s : sequence of float, one per rank, or None
        Seconds from a partial's modelled arrival until the receiving thread acts on it (the
        operating system's wake-up latency).  None: 0 on every rank.
    """
    p = layout.world_size
    issue_s = [0.0] * p if issue_s is None else list(issue_s)
    wake_s = [0.0] * p if wake_s is None else list(wake_s)
    if len(group_s) != p or len(issue_s) != p or len(wake_s) != p:
        raise ValueError(f"group_s, issue_s and wake_s need one entry per rank ({p}), "
                         f"got {len(group_s)}, {len(issue_s)} and {len(wake_s)}")
    for rank in range(p):
        _check(layout, group_s[rank], step_s, reduce_s, contention, issue_s[rank])
        if not wake_s[rank] >= 0:
            raise ValueError(f"wake_s must be >= 0, got {wake_s[rank]!r}")
    last_step = p - 1
    heap: list = []
    order = 0
    events: list = []
    local = [set() for _ in range(p)]
    arrived = [set() for _ in range(p)]
    transfers: list[list[tuple[float, float]]] = [[] for _ in range(p)]
    link_free = [0.0] * p
    finished = 0.0

    def push(time: float, kind: str, rank: int, payload) -> None:
        nonlocal order
        heapq.heappush(heap, (time, order, kind, rank, payload))
        order += 1

    def fire_if_ready(rank: int, item, now: float) -> float:
        """Fire ``item`` on ``rank`` if its counter is full; return the time its thread spent."""
        nonlocal finished
        step, _ = item
        if item not in local[rank] or (step > 0 and item not in arrived[rank]):
            return 0.0
        spent = reduce_s if step > 0 else 0.0
        if spent:
            events.append((rank, "reduce", "compute", now, now + spent, item))
        ready = now + spent
        if step == last_step:
            finished = max(finished, ready)
            return spent
        start = max(ready + issue_s[rank], link_free[rank])
        link_free[rank] = start + step_s
        transfers[rank].append((start, link_free[rank]))
        events.append((rank, "send", "comm", start, link_free[rank], item))
        finished = max(finished, link_free[rank])
        # the right neighbour now holds the partial of its chunk (step + 1, j)
        right = (rank + 1) % p
        push(link_free[rank] + wake_s[right], "arrive", right, (step + 1, item[1]))
        return spent + issue_s[rank]

    for rank in range(p):
        push(group_s[rank][0], "gemm", rank, (0, 0.0))
    while heap:
        now, _, kind, rank, payload = heapq.heappop(heap)
        if kind == "arrive":
            arrived[rank].add(payload)
            fire_if_ready(rank, payload, now)  # fired by the receiving thread: the GEMM does not wait
            continue
        index, start = payload
        end = now + contention * _overlap(start, now, transfers[rank])
        events.append((rank, f"gemm {index}", "compute", start, end, None))
        finished = max(finished, end)
        # The GEMM thread fills the counters of its rows; a full counter fires on this thread,
        # so any reduction or send it issues delays the next GEMM group.
        spent = 0.0
        for item in layout.groups[index]:
            local[rank].add(item)
            spent += fire_if_ready(rank, item, end + spent)
        if index + 1 < len(layout.groups):
            push(end + spent + group_s[rank][index + 1], "gemm", rank, (index + 1, end + spent))
    return ScheduleTrace(layout, finished, tuple(events))


def simulate_schedule(
    layout: ScheduleLayout,
    group_s: Sequence[float],
    step_s: float,
    *,
    reduce_s: float = 0.0,
    contention: float = 0.0,
    issue_s: float = 0.0,
) -> ScheduleTrace:
    """Model ``layout`` with every rank alike (the parameters of :func:`simulate_ring`, per rank)."""
    p = layout.world_size
    return simulate_ring(layout, [list(group_s)] * p, step_s, reduce_s=reduce_s, contention=contention,
                         issue_s=[issue_s] * p)


def trace_spans(trace: ScheduleTrace) -> list[Span]:
    """The modelled run as :class:`companion.comm.Span` s, for ``comm.plot_gantt``.

    Names say which reduce-scatter block each rank handles.
    """
    p = trace.layout.world_size
    return [
        Span(rank, name if item is None else f"{name} block {block_of(item, rank, p)}.{item[1]}", kind, start, end)
        for rank, name, kind, start, end, item in trace.events
    ]
