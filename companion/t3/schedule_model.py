"""An event-driven model of the three schedules: what the closed form abstracts, step by step.

It replays, in model time, exactly what a rank of :mod:`companion.t3.schedules` does:

1. the GEMM runs its groups back to back (:class:`~companion.t3.layout.ScheduleLayout`);
2. a row chunk's send fires the moment its counter is full: its own GEMM rows are written and,
   past ring step 0, the partial sum from the left neighbour has arrived and been added; the
   firing thread then spends ``issue_s`` handing the send to the link;
3. one link clock per rank serialises the sends (start = max(fire time, link free));
4. a GEMM group is stretched by ``contention`` times its overlap with transfers in flight,
   the rule of :class:`companion.comm.ModelledLink`;
5. every rank does the same thing at the same time (the ring is symmetric), so the partial a
   rank receives for chunk ``(s+1, j)`` lands when its own send of ``(s, j)`` completes.

With one chunk per ring step and no contention it reproduces
:func:`~companion.t3.pipeline_model.pipelined_time` exactly (tested).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Sequence

from companion.comm import Span

from .layout import ScheduleLayout, block_of

__all__ = ["ScheduleTrace", "simulate_schedule", "trace_spans"]


@dataclass(frozen=True)
class ScheduleTrace:
    """The modelled run of one rank.

    Attributes
    ----------
    total_s : float
        Seconds until the rank holds its reduced block and every send has completed.
    events : tuple of (name, kind, start_s, end_s, item)
        Compute groups (``kind="compute"``, ``item=None``), reductions (``"compute"``) and sends
        (``"comm"``), relative to time 0.
    """

    layout: ScheduleLayout
    total_s: float
    events: tuple[tuple[str, str, float, float, tuple | None], ...]


def _overlap(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    """Length of [start, end] covered by the union of ``intervals``."""
    covered, cursor = 0.0, start
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            covered += hi - lo
            cursor = hi
    return covered


def simulate_schedule(
    layout: ScheduleLayout,
    group_s: Sequence[float],
    step_s: float,
    *,
    reduce_s: float = 0.0,
    contention: float = 0.0,
    issue_s: float = 0.0,
) -> ScheduleTrace:
    """Model one rank of ``layout``.

    Parameters
    ----------
    layout : ScheduleLayout
        The schedule's GEMM groups.
    group_s : sequence of float
        Seconds each GEMM group takes in isolation (one per ``layout.groups``).
    step_s : float
        Seconds one row chunk keeps the link busy (``alpha + chunk_bytes / beta``).
    reduce_s : float
        Seconds to add one received partial chunk into the local one.
    contention : float
        ``c >= 0``: a GEMM group lasts ``t + c * overlap`` with transfers in flight.
    issue_s : float
        Seconds the firing thread spends handing a send to the link (software overhead; a
        hardware trigger such as T3's makes it ~0).
    """
    if len(group_s) != len(layout.groups):
        raise ValueError(f"group_s needs {len(layout.groups)} durations (one per GEMM group), got {len(group_s)}")
    for name, value in (("step_s", step_s), ("reduce_s", reduce_s), ("contention", contention),
                        ("issue_s", issue_s), *(
            (f"group_s[{i}]", t) for i, t in enumerate(group_s))):
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value!r}")
    last_step = layout.world_size - 1
    heap: list = []
    order = 0
    events: list = []
    local: set = set()
    arrived: set = set()
    transfers: list[tuple[float, float]] = []
    link_free = 0.0
    finished = 0.0

    def push(time: float, kind: str, payload) -> None:
        nonlocal order
        heapq.heappush(heap, (time, order, kind, payload))
        order += 1

    def fire_if_ready(item, now: float) -> float:
        """Fire ``item`` if its counter is full; return the reduction time spent by the caller."""
        nonlocal link_free, finished
        step, _ = item
        if item not in local or (step > 0 and item not in arrived):
            return 0.0
        spent = reduce_s if step > 0 else 0.0
        if spent:
            events.append(("reduce", "compute", now, now + spent, item))
        ready = now + spent
        if step == last_step:
            finished = max(finished, ready)
            return spent
        start = max(ready + issue_s, link_free)
        link_free = start + step_s
        transfers.append((start, link_free))
        events.append(("send", "comm", start, link_free, item))
        finished = max(finished, link_free)
        push(link_free, "arrive", (step + 1, item[1]))
        return spent + issue_s

    push(group_s[0], "gemm", (0, 0.0))
    while heap:
        now, _, kind, payload = heapq.heappop(heap)
        if kind == "arrive":
            arrived.add(payload)
            fire_if_ready(payload, now)  # fired by the receiving thread: the GEMM does not wait
            continue
        index, start = payload
        end = now + contention * _overlap(start, now, transfers)
        events.append((f"gemm {index}", "compute", start, end, None))
        finished = max(finished, end)
        # The GEMM thread fills the counters of its rows; a full counter fires on this thread,
        # so any reduction it does delays the next GEMM group.
        spent = 0.0
        for item in layout.groups[index]:
            local.add(item)
            spent += fire_if_ready(item, end + spent)
        if index + 1 < len(layout.groups):
            push(end + spent + group_s[index + 1], "gemm", (index + 1, end + spent))
    return ScheduleTrace(layout, finished, tuple(events))


def trace_spans(trace: ScheduleTrace) -> list[Span]:
    """The modelled run as :class:`companion.comm.Span` s on every rank, for ``comm.plot_gantt``.

    The ring is symmetric, so every rank has the same times; the names say which block each
    rank handles.
    """
    p = trace.layout.world_size
    spans = []
    for rank in range(p):
        for name, kind, start, end, item in trace.events:
            label = name if item is None else f"{name} block {block_of(item, rank, p)}.{item[1]}"
            spans.append(Span(rank, label, kind, start, end))
    return spans
