"""One event model of overlapped schedules: the book's single simulator of compute and communication.

A :class:`Schedule` holds operations on ``n_ranks`` ranks; :meth:`Schedule.run` plays them out in
model time (seconds) and returns a :class:`Run`. Every chapter that simulates a schedule builds
one (the intro's pipeline, comm's overlap experiment, T3's chunked ring, Ladder's deferred
all-reduce, DiLoCo's per-layer syncs, CO2's stale round).

Resources
    Each rank has compute *threads* (named; ``"main"`` by default), each running one compute op
    at a time, and one network *link* with an outgoing and an incoming direction (full duplex;
    ``duplex=False`` makes the two one resource, the single clock per rank of
    :class:`~companion.comm.ModelledLink`).

Operations (each may wait ``after`` any earlier operations, on any rank)
    ``compute(rank, t)``: ``t`` seconds on one thread of ``rank``.
    ``collective(ranks, t)``: starts when every dependency is done, i.e. when every participant
    has issued it, *and* every participant's link is free; occupies both directions of every
    participant's link for ``t`` seconds and completes for all participants together.
    ``send(src, dst, t)``: occupies the sender's outgoing link and, with ``charge_receiver``,
    the receiver's incoming one (``ModelledLink.irecv`` charges the receiver's clock too).

Order
    A thread and a link direction serve ready operations first come, first served: by the time
    they became ready, then ``priority`` (lower first), then creation order.

Contention (the one definition, that of :meth:`ModelledLink.compute <companion.comm.ModelledLink.compute>`)
    A compute op of ``t`` seconds starting at ``s`` lasts ``t + c * overlap``, where ``overlap``
    is the length of ``[s, s + t]`` covered by communication in flight on its rank (an op
    occupying either direction of the rank's link) and ``c = Schedule.contention``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

from .timeline import Span

#: ``thread=LAST``: run on the thread of the dependency that finished last (on the same rank),
#: as a counter fires on whichever thread completes it (T3's trigger).
LAST = "<last>"

__all__ = ["LAST", "Op", "Run", "Schedule"]


@dataclass(frozen=True)
class Op:
    """One operation. ``kind`` is ``"compute"``, ``"collective"`` or ``"send"``; times in seconds."""

    id: int
    kind: str
    name: str
    ranks: tuple[int, ...]  # compute: (rank,); collective: participants; send: (src, dst)
    duration_s: float
    after: tuple[int, ...]
    thread: str = "main"
    contended: bool = True
    priority: float = 0.0
    charge_receiver: bool = True


@dataclass(frozen=True)
class Run:
    """The played-out schedule: ``start_s[i]``, ``end_s[i]`` and ``thread[i]`` of op ``i`` (seconds)."""

    ops: tuple[Op, ...]
    start_s: tuple[float, ...]
    end_s: tuple[float, ...]
    thread: tuple[str | None, ...]

    @property
    def makespan_s(self) -> float:
        """Seconds until the last operation ends (0 for an empty schedule)."""
        return max(self.end_s, default=0.0)

    def rank_end_s(self, rank: int) -> float:
        """Seconds until the last operation involving ``rank`` ends."""
        return max((e for op, e in zip(self.ops, self.end_s) if rank in op.ranks), default=0.0)

    def spans(self) -> list[Span]:
        """Every op as :class:`~companion.comm.Span` s, in creation order: one per compute op, one
        per participant of a collective, one for a send's sender (and receiver, if charged)."""
        out = []
        for op, s, e in zip(self.ops, self.start_s, self.end_s):
            if op.kind == "compute":
                out.append(Span(op.ranks[0], op.name, "compute", s, e))
            else:
                ranks = op.ranks if op.kind == "collective" or op.charge_receiver else op.ranks[:1]
                out.extend(Span(r, op.name, "comm", s, e) for r in ranks)
        return out


def _check_duration(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: duration must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _covered(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    """Length of ``[start, end]`` covered by the union of ``intervals``."""
    covered, cursor = 0.0, start
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            covered += hi - lo
            cursor = hi
    return covered


@dataclass
class Schedule:
    """Operations on ``n_ranks`` ranks; see the module docstring for the rules.

    Parameters
    ----------
    n_ranks : int
        Ranks ``0 .. n_ranks - 1``.
    contention : float
        ``c >= 0``: a contended compute op is stretched by ``c`` times its overlap with
        communication in flight on its rank.
    duplex : bool
        True: a link's two directions are separate resources (a ring's sends and receives run at
        once); False: one resource per rank, as :class:`~companion.comm.ModelledLink`'s clock.
    """

    n_ranks: int
    contention: float = 0.0
    duplex: bool = True
    ops: list[Op] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.n_ranks, bool) or not isinstance(self.n_ranks, int) or self.n_ranks < 1:
            raise ValueError(f"n_ranks must be an integer >= 1, got {self.n_ranks!r}")
        if not (isinstance(self.contention, (int, float)) and math.isfinite(self.contention)
                and self.contention >= 0):
            raise ValueError(f"contention must be a finite number >= 0, got {self.contention!r}")

    # -- building ---------------------------------------------------------------------------
    def _rank(self, rank: int) -> int:
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.n_ranks:
            raise ValueError(f"rank must be an integer in [0, {self.n_ranks}), got {rank!r}")
        return rank

    def _add(self, kind, name, ranks, duration_s, after, **extra) -> int:
        deps = tuple(int(d) for d in after)
        for d in deps:
            if not 0 <= d < len(self.ops):
                raise ValueError(f"{name}: dependency {d} is not an earlier operation (0..{len(self.ops) - 1})")
        self.ops.append(Op(len(self.ops), kind, name, ranks, _check_duration(name, duration_s), deps, **extra))
        return len(self.ops) - 1

    def compute(self, rank: int, duration_s: float, *, after=(), name: str = "compute", thread: str = "main",
                contended: bool = True, priority: float = 0.0) -> int:
        """Add ``duration_s`` seconds of compute on ``thread`` of ``rank``; returns the op's id.

        ``thread=LAST`` runs it on the thread of its latest-finishing dependency on ``rank``
        (ties: the one listed last in ``after``); ``contended=False`` exempts it from the stretch
        (host bookkeeping that does not share the link's resources).
        """
        return self._add("compute", name, (self._rank(rank),), duration_s, after, thread=str(thread),
                         contended=bool(contended), priority=float(priority))

    def collective(self, ranks, duration_s: float, *, after=(), name: str = "collective") -> int:
        """Add a collective over ``ranks`` lasting ``duration_s`` seconds once it starts; returns its id."""
        ranks = tuple(sorted({self._rank(r) for r in ranks}))
        if not ranks:
            raise ValueError(f"{name}: a collective needs at least one rank")
        return self._add("collective", name, ranks, duration_s, after)

    def send(self, src: int, dst: int, duration_s: float, *, after=(), name: str = "send",
             charge_receiver: bool = True) -> int:
        """Add a point-to-point message ``src -> dst`` lasting ``duration_s`` seconds; returns its id."""
        if self._rank(src) == self._rank(dst):
            raise ValueError(f"{name}: a send needs two different ranks, got src = dst = {src}")
        return self._add("send", name, (src, dst), duration_s, after, charge_receiver=bool(charge_receiver))

    # -- playing ----------------------------------------------------------------------------
    def _lanes(self, op: Op) -> tuple:
        if op.kind == "collective":
            return tuple(("link", r, d) for r in op.ranks for d in (("out", "in") if self.duplex else ("both",)))
        src, dst = op.ranks
        lanes = [("link", src, "out" if self.duplex else "both")]
        if op.charge_receiver:
            lanes.append(("link", dst, "in" if self.duplex else "both"))
        return tuple(lanes)

    def run(self) -> Run:
        """Play the schedule out; returns the :class:`Run` (every op's start and end, seconds)."""
        n = len(self.ops)
        start, end, thread = [math.nan] * n, [math.nan] * n, [None] * n
        waiting = [len(op.after) for op in self.ops]
        children: list[list[int]] = [[] for _ in range(n)]
        for op in self.ops:
            for d in op.after:
                children[d].append(op.id)
        busy: set = set()  # threads ("thread", rank, name) and link directions ("link", rank, d) in use
        queues: dict = {}  # thread -> heap of (ready, priority, id)
        comm_queue: list = []  # ready communication ops, heap of (ready, priority, id)
        in_flight: list[list[tuple[float, float]]] = [[] for _ in range(self.n_ranks)]
        events: list = []  # (time, order, kind, id)
        order = 0

        def push(time: float, kind: str, i: int) -> None:
            nonlocal order
            heapq.heappush(events, (time, order, kind, i))
            order += 1

        def ready(i: int, now: float) -> None:
            op = self.ops[i]
            key = (now, op.priority, i)
            if op.kind != "compute":
                heapq.heappush(comm_queue, key)
                return
            name = op.thread
            if name == LAST:
                same_rank = [d for d in op.after if self.ops[d].kind == "compute" and self.ops[d].ranks == op.ranks]
                name = "main"
                if same_rank:
                    last = max(range(len(same_rank)), key=lambda k: (end[same_rank[k]], k))
                    name = thread[same_rank[last]]
            thread[i] = name
            heapq.heappush(queues.setdefault(("thread", op.ranks[0], name), []), key)

        def dispatch(now: float) -> None:
            for res, queue in queues.items():
                if queue and res not in busy:
                    _, _, i = heapq.heappop(queue)
                    busy.add(res)
                    start[i] = now
                    push(now + self.ops[i].duration_s, "body", i)
            blocked: set = set()
            for key in sorted(comm_queue):  # first come, first served on every lane
                op = self.ops[key[2]]
                lanes = self._lanes(op)
                if not any(lane in busy or lane in blocked for lane in lanes):
                    comm_queue.remove(key)
                    busy.update(lanes)
                    start[op.id] = now
                    ranks = op.ranks if op.kind == "collective" or op.charge_receiver else op.ranks[:1]
                    for r in ranks:
                        in_flight[r].append((now, now + op.duration_s))
                    push(now + op.duration_s, "done", op.id)
                blocked.update(lanes)
            heapq.heapify(comm_queue)

        for i in range(n):
            if not waiting[i]:
                ready(i, 0.0)
        dispatch(0.0)
        while events:
            now = events[0][0]
            while events and events[0][0] == now:
                _, _, kind, i = heapq.heappop(events)
                op = self.ops[i]
                if kind == "body":  # compute body over: stretch it by its overlap with transfers
                    s = start[i]
                    extra = 0.0
                    if op.contended and self.contention > 0:
                        extra = self.contention * _covered(s, now, in_flight[op.ranks[0]])
                    if extra > 0:
                        push(now + extra, "done", i)
                        continue
                end[i] = now
                if op.kind == "compute":
                    busy.discard(("thread", op.ranks[0], thread[i]))
                else:
                    busy.difference_update(self._lanes(op))
                for child in children[i]:
                    waiting[child] -= 1
                    if not waiting[child]:
                        ready(child, now)
            dispatch(now)
        return Run(tuple(self.ops), tuple(start), tuple(end), tuple(thread))
