"""Timelines: compute and communication spans per rank, and the figures that summarise them."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

KINDS = ("compute", "comm")


@dataclass(frozen=True)
class Span:
    """One interval of work on one rank; times in seconds relative to the rank's timeline origin."""

    rank: int
    name: str
    kind: str
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class Timeline:
    """Records the spans of one rank.

    Times come from ``time.perf_counter()``, which on Linux is one monotonic clock shared by all
    processes of a machine, so spans of ranks on the same machine line up when every rank calls
    :meth:`reset` right after a barrier.
    """

    def __init__(self, rank: int = 0) -> None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise ValueError(f"rank must be an integer >= 0, got {rank!r}")
        self.rank = rank
        self.origin = time.perf_counter()
        self._spans: list[Span] = []

    def reset(self) -> None:
        """Forget every span and start the clock again now."""
        self.origin = time.perf_counter()
        self._spans = []

    def record(self, name: str, kind: str, start_s: float, end_s: float) -> Span:
        """Add a span given absolute ``perf_counter`` seconds."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if not end_s >= start_s:
            raise ValueError(f"end_s ({end_s}) must be >= start_s ({start_s})")
        span = Span(self.rank, str(name), kind, start_s - self.origin, end_s - self.origin)
        self._spans.append(span)
        return span

    @contextmanager
    def span(self, name: str, kind: str = "compute") -> Iterator[None]:
        """Record the wall time of the ``with`` body as one span."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(name, kind, start, time.perf_counter())

    @property
    def spans(self) -> list[Span]:
        return list(self._spans)


def _union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: list[tuple[float, float]]) -> float:
    return sum(end - start for start, end in intervals)


def _intersection_length(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    total, i, j = 0.0, 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if hi > lo:
            total += hi - lo
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return total


def summarize_rank(spans: list[Span]) -> dict:
    """The figures of one rank's spans (see :func:`summarize`)."""
    compute = _union((s.start_s, s.end_s) for s in spans if s.kind == "compute")
    comm = _union((s.start_s, s.end_s) for s in spans if s.kind == "comm")
    compute_s, comm_s = _length(compute), _length(comm)
    hidden = _intersection_length(compute, comm)
    smaller = min(compute_s, comm_s)
    wall = max(s.end_s for s in spans) - min(s.start_s for s in spans) if spans else 0.0
    return {
        "compute_s": compute_s,
        "comm_s": comm_s,
        "wall_s": wall,
        "exposed_comm_s": comm_s - hidden,
        "hidden_comm_s": hidden,
        "overlap_efficiency": hidden / smaller if smaller > 0 else math.nan,
    }


def summarize(spans: Iterable[Span]) -> dict:
    """Compute time, communication time, wall time and overlap of a set of spans.

    Per rank: ``compute_s`` and ``comm_s`` are the lengths of the unions of the compute and of the
    communication spans; ``hidden_comm_s`` is the time both run at once; ``exposed_comm_s`` =
    ``comm_s - hidden_comm_s``; ``wall_s`` runs from the first start to the last end;
    ``overlap_efficiency`` = hidden / min(compute, comm), NaN when either is zero.

    Returns the figures of the worst rank (the largest ``wall_s``) at the top level, with
    ``worst_rank`` naming it and ``per_rank`` mapping every rank to its own figures.
    """
    spans = list(spans)
    if not spans:
        raise ValueError("summarize needs at least one span")
    ranks = sorted({s.rank for s in spans})
    per_rank = {r: summarize_rank([s for s in spans if s.rank == r]) for r in ranks}
    worst = max(ranks, key=lambda r: per_rank[r]["wall_s"])
    return {**per_rank[worst], "worst_rank": worst, "per_rank": per_rank}
