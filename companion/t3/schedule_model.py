"""An event-driven model of the three schedules: what the closed form abstracts, step by step.

It replays, in model time, exactly what a rank of :mod:`companion.t3.schedules` does, as
operations of the book's one event model (:class:`companion.comm.Schedule`):

1. the GEMM runs its groups back to back on the rank's GEMM thread
   (:class:`~companion.t3.layout.ScheduleLayout`);
2. a row chunk's send fires the moment its counter is full: its own GEMM rows are written and,
   past ring step 0, the partial sum from the left neighbour has arrived and been added; the
   firing thread (whichever filled the counter: the GEMM thread, which then delays its next
   group, or the receiving thread) spends ``issue_s`` handing the send to the link;
3. each rank's outgoing link serialises its sends, first come, first served;
4. a GEMM group is stretched by ``contention`` times its overlap with the rank's sends in flight,
   the one contention definition of :mod:`companion.comm.events`;
5. the partial a rank receives for its chunk ``(s+1, j)`` lands ``wake_s`` after its left
   neighbour's send of ``(s, j)`` completes (the receiver posts a raw ``irecv``, which
   :class:`~companion.comm.ModelledLink` does not charge, so the send is not charged to the
   receiver's link either). :func:`simulate_ring` gives each rank its own GEMM times;
   :func:`simulate_schedule` makes all ranks alike.

With one chunk per ring step it reproduces
:func:`~companion.t3.pipeline_model.pipelined_time` exactly, with and without contention (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from companion.comm import Span
from companion.comm.events import LAST, Schedule

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
    # The ring as operations of the book's one event model. Each rank has a GEMM thread and a
    # receiving thread; a chunk fires (adds the partial in, hands the send to the link) on
    # whichever thread completes its counter: the GEMM thread (then the next GEMM group waits,
    # priority -1) or the receiving thread (the GEMM does not wait).
    sched = Schedule(p, contention=contention)
    gemm: list[list[int]] = [[] for _ in range(p)]
    for r in range(p):  # the GEMM groups run back to back; they never wait for data
        for i, t in enumerate(group_s[r]):
            gemm[r].append(sched.compute(r, t, after=gemm[r][-1:], name=f"gemm {i}", thread="gemm"))
    group_of = {item: (i, k) for i, group in enumerate(layout.groups) for k, item in enumerate(layout.groups[i])}
    arrival: dict = {}  # (rank, item) -> the op after which the rank's receiving thread holds it
    fires: list = []  # (op id, rank, item, reduce seconds)
    for step in range(p):
        for r in range(p):
            for item in sorted(i for i in group_of if i[0] == step):
                index, position = group_of[item]
                after = [gemm[r][index]] + ([arrival[r, item]] if step > 0 else [])
                spent = reduce_s if step > 0 else 0.0
                last = step == p - 1
                fire = sched.compute(r, spent + (0.0 if last else issue_s[r]), after=after, thread=LAST,
                                     contended=False, priority=position - len(layout.groups[index]) - 1,
                                     name="fire")
                fires.append((fire, r, item, spent))
                if last:
                    continue
                right = (r + 1) % p
                # T3's receiver posts a raw irecv, which ModelledLink does not charge
                send = sched.send(r, right, step_s, after=[fire], name="send", charge_receiver=False)
                fires.append((send, r, item, None))
                arrival[right, (step + 1, item[1])] = sched.compute(
                    right, wake_s[right], after=[send], thread="recv", contended=False, name="wake")
    run = sched.run()
    events: list = []
    for r in range(p):
        for i, op in enumerate(gemm[r]):
            events.append((r, f"gemm {i}", "compute", run.start_s[op], run.end_s[op], None))
    for op, r, item, spent in fires:
        if spent is None:
            events.append((r, "send", "comm", run.start_s[op], run.end_s[op], item))
        elif spent > 0:
            events.append((r, "reduce", "compute", run.start_s[op], run.start_s[op] + spent, item))
    events.sort(key=lambda e: (e[3], e[0]))
    return ScheduleTrace(layout, run.makespan_s, tuple(events))


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
