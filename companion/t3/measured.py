"""One setting of the experiment (:class:`ScheduleRun`), its measurement, and the model's replay of it.

:mod:`~companion.t3.experiment` imports this module, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from companion.comm import Link, Span

from .layout import make_layout
from .pipeline_model import chunk_times, pipelined_time, sequential_time
from .schedule_model import ScheduleTrace, simulate_ring

__all__ = ["MeasuredRun", "ScheduleRun", "median"]


def median(values) -> float:
    """The median of a non-empty sequence of numbers."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("median of an empty sequence")
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


@dataclass(frozen=True)
class ScheduleRun:
    """One setting of the experiment.

    Attributes
    ----------
    schedule : str
        ``"sequential"``, ``"coarse"`` or ``"fine"``.
    chunks : int
        Row chunks per block (see :func:`companion.t3.layout.make_layout`).
    comm_ratio : float
        ``C_RS / G``: the link is chosen so that the ring reduce-scatter takes this many times
        the GEMM time measured alone.
    contention : float
        ``c`` of the modelled link: overlapped GEMM stretched by ``c`` times the overlap.
    """

    schedule: str
    chunks: int = 1
    comm_ratio: float = 1.0
    contention: float = 0.0

    def __post_init__(self) -> None:
        make_layout(self.schedule, 1, self.chunks)  # validates schedule and chunks
        if not self.comm_ratio > 0:
            raise ValueError(f"comm_ratio must be > 0, got {self.comm_ratio!r}")
        if not self.contention >= 0:
            raise ValueError(f"contention must be >= 0, got {self.contention!r}")


@dataclass(frozen=True)
class MeasuredRun:
    """One setting measured on every rank.

    Attributes
    ----------
    measured_s : float
        The fastest repeat's time (of its slowest rank): the run least disturbed by the other
        processes of a shared machine, as ``timeit`` reports.
    spans : list of comm.Span
        Every rank's spans in that repeat (index ``shown``).
    group_s : tuple (repeats) of tuple (ranks) of tuple of float
        Per repeat and rank, each GEMM group's time in that run before the contention
        stretch: the model's input.
    issue_s : tuple (repeats) of tuple (ranks) of float
        Per repeat and rank, the median seconds to hand a send to the link (the software's
        per-message overhead: a thread start, a host-side copy).
    wake_s : tuple (repeats) of tuple (ranks) of float
        Per repeat and rank, the median seconds from a partial's modelled arrival until its
        receiving thread ran (the operating system's wake-up latency on a loaded machine).
    reduce_s, step_s : float
        One addition timed alone, and the modelled seconds one row chunk keeps the link busy.
    calib_group_s : tuple (repeats) of tuple of float
        Calibration just before each judged repeat: each GEMM group's fastest time alone
        (every rank computing at once, no link), the largest over the ranks.
    calib_issue_s, calib_wake_s : tuple (ranks) of float
        Calibration: the median overheads of one run of the setting whose total was discarded.
    """

    run: ScheduleRun
    world_size: int
    link: Link
    gemm_s: float
    out_bytes: int
    group_s: tuple[tuple[tuple[float, ...], ...], ...]
    issue_s: tuple[tuple[float, ...], ...]
    wake_s: tuple[tuple[float, ...], ...]
    reduce_s: float
    measured_s: float
    totals_s: tuple[float, ...]
    spans: list[Span]
    shown: int
    max_abs_error: float
    outputs: list | None
    calib_group_s: tuple[tuple[float, ...], ...] = ()
    calib_issue_s: tuple[float, ...] = ()
    calib_wake_s: tuple[float, ...] = ()

    @property
    def layout(self):
        return make_layout(self.run.schedule, self.world_size, self.run.chunks)

    @property
    def step_s(self) -> float:
        chunks = self.world_size * self.layout.chunks_per_block
        return self.link.p2p_time(self.out_bytes / chunks)

    def predict(self, repeat: int | None = None) -> ScheduleTrace:
        """The event model of one repeat (default: the one shown in ``spans``)."""
        k = self.shown if repeat is None else repeat
        return simulate_ring(self.layout, self.group_s[k], self.step_s, reduce_s=self.reduce_s,
                             contention=self.run.contention, issue_s=self.issue_s[k], wake_s=self.wake_s[k])

    def predict_calibrated(self, repeat: int | None = None) -> ScheduleTrace:
        """The event model fed only by calibration and the pooled overheads of discarded runs.

        With ``repeat``, each GEMM group is as long as it took alone just before that repeat.
        By default, as long as its fastest calibration over all repeats: the least disturbed
        GEMM, set beside :attr:`measured_s`, the least disturbed run (on a loaded machine one
        calibration can fall in a busy moment its judged run escaped)."""
        if not self.calib_group_s:
            raise ValueError("this run has no calibration; run it with run_experiment")
        if repeat is None:
            fastest = tuple(min(per_repeat) for per_repeat in zip(*self.calib_group_s))
        else:
            fastest = self.calib_group_s[repeat]
        groups = tuple(fastest for _ in range(self.world_size))
        return simulate_ring(self.layout, groups, self.step_s, reduce_s=self.reduce_s,
                             contention=self.run.contention, issue_s=self.calib_issue_s,
                             wake_s=self.calib_wake_s)

    @property
    def calibrated_s(self) -> float:
        """The calibration-fed model's time (fastest calibrations), beside :attr:`measured_s`."""
        return self.predict_calibrated().total_s

    def forwarded_sends(self) -> dict[int, int]:
        """Per rank, the sends of the repeat shown that carried an arrived partial: the addition of
        the same chunk (span ``"reduce <chunk>"``) ended before the send (``"send <chunk>"``) began.

        In a ring of ``p`` ranks every send after a rank's first forwards a partial, so a correct
        ring shows ``p - 2`` of its ``p - 1`` sends per rank (and per chunk of a block) doing so.
        """
        out = {}
        for rank in range(self.world_size):
            spans = [s for s in self.spans if s.rank == rank]
            reduced = {s.name.split()[1]: s.end_s for s in spans if s.name.startswith("reduce")}
            out[rank] = sum(1 for s in spans if s.name.startswith("send")
                            and reduced.get(s.name.split()[1], float("inf")) <= s.start_s)
        return out

    @property
    def predicted_s(self) -> float:
        """The event model's time for the repeat shown (the fastest)."""
        return self.predict().total_s

    @property
    def has_closed_form(self) -> bool:
        return self.run.schedule == "sequential" or (self.run.schedule == "fine" and self.run.chunks == 1)

    def closed_form_s(self) -> float:
        """The closed form for the repeat shown, each ring step charged its issue and addition
        overheads: ``G + C_RS`` for sequential; ``g + (p-1) max(g + c min(g, x'), x')`` for the
        ring-ordered fine schedule with one chunk per step (``c`` stretches a chunk by its
        overlap with the send in flight, as the event model does)."""
        p, c = self.world_size, self.run.contention
        rs = self.link.reduce_scatter_time(self.out_bytes, p)
        # the closed form has one GEMM time and one overhead: the slowest rank's
        k = self.shown
        groups = [max(rank[i] for rank in self.group_s[k]) for i in range(len(self.group_s[k][0]))]
        overhead = max(self.issue_s[k]) + max(self.wake_s[k]) + self.reduce_s
        if self.run.schedule == "sequential":
            return sequential_time(groups[0], rs + (p - 1) * overhead)
        if self.has_closed_form:
            g, x = chunk_times(sum(groups), rs, p)
            return pipelined_time(g, x + overhead, p, contention=c)
        raise ValueError("the closed form covers the sequential schedule and the fine one with one chunk per step")
