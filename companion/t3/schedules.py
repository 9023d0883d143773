"""A row-parallel GEMM and its ring reduce-scatter on real processes, three ways.

Each rank holds ``A_r`` ``(M, K)`` and ``B_r`` ``(K, N)`` and must end with block ``r`` (rows
``[r M/p, (r+1) M/p)``) of ``sum_r A_r @ B_r``.  :func:`run_schedule` runs one schedule of
:mod:`companion.t3.layout` once, through a :class:`~companion.t3.p2p_link.P2PLink` (the modelled link of
:class:`companion.comm.ModelledLink`, for point-to-point sends):

1. the GEMM thread computes the layout's groups in order, inside ``net.compute`` spans (so
   the link's contention factor stretches them), and records each finished row chunk in a
   :class:`~companion.t3.tracker.ChunkTracker`;
2. one receiving thread per incoming partial waits for it, holds it until the sender's
   modelled completion time, and records it in the tracker;
3. the write that fills a chunk's counter adds the partial in and ``isend`` s the chunk to the
   right neighbour at once (T3's track & trigger); the rank's own block is then complete.

The same ring of point-to-point messages serves all three schedules, so they differ only in
when each chunk is ready.  :func:`schedule_worker` is the function :func:`comm.launch` runs.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from companion.comm import Link, Timeline

from .p2p_link import P2PLink
from .layout import ScheduleLayout, block_of, check_rows, item_rows, make_layout
from .tracker import ChunkTracker

__all__ = ["ScheduleRun", "ExperimentSpec", "run_schedule", "schedule_worker", "link_for_ratio"]

# Tags of the ring's messages: the data of chunk (s, j) and the sender's modelled completion time.
_DATA_TAG, _TIME_TAG = 100, 100_000


def _tag(item, chunks_per_block: int) -> int:
    return item[0] * chunks_per_block + item[1]


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
        The link is chosen so that the ring reduce-scatter takes ``comm_ratio`` times the
        measured GEMM time.
    contention : float
        ``c`` of :class:`companion.comm.ModelledLink`.
    """

    schedule: str
    chunks: int = 1
    comm_ratio: float = 1.0
    contention: float = 0.0


@dataclass(frozen=True)
class ExperimentSpec:
    """GEMM sizes, link latency, settings and repeats of one :func:`schedule_worker` call."""

    m: int
    k: int
    n: int
    runs: tuple[ScheduleRun, ...]
    repeats: int = 3
    latency_s: float = 1e-4
    seed: int = 0
    return_outputs: bool = False
    warmup: int = field(default=2)


def link_for_ratio(gemm_s: float, out_bytes: int, world_size: int, comm_ratio: float, latency_s: float) -> Link:
    """The link whose ring reduce-scatter of ``out_bytes`` takes ``comm_ratio * gemm_s`` seconds."""
    if world_size < 2:
        raise ValueError(f"a link needs world_size >= 2, got {world_size}")
    per_step = comm_ratio * gemm_s / (world_size - 1) - latency_s
    if not per_step > 0:
        raise ValueError(
            f"comm_ratio={comm_ratio} leaves no time for bytes after the latency {latency_s} s per step; "
            "raise comm_ratio or lower latency_s"
        )
    return Link(latency_s=latency_s, bandwidth_bytes_per_s=out_bytes / world_size / per_step)


def run_schedule(a: torch.Tensor, b: torch.Tensor, layout: ScheduleLayout, net: P2PLink,
                 timeline: Timeline) -> tuple[torch.Tensor, float]:
    """Run ``layout`` once; return this rank's reduced block ``(M/p, N)`` and its seconds.

    The clock starts at a barrier (``timeline.reset()``) and stops when the block is complete
    and every send this rank made has completed on the modelled link.
    """
    p, rank = dist.get_world_size(), dist.get_rank()
    m_rows, n_cols = a.shape[0], b.shape[1]
    check_rows(m_rows, p, layout.chunks_per_block)
    left, right = (rank - 1) % p, (rank + 1) % p
    out = torch.empty(m_rows, n_cols, dtype=a.dtype)
    rows = {item: item_rows(item, rank, m_rows, layout) for item in layout.items}
    incoming = [item for item in layout.items if item[0] > 0]
    received = {item: torch.empty(rows[item].stop - rows[item].start, n_cols, dtype=a.dtype) for item in incoming}
    stamps = {item: torch.zeros(1, dtype=torch.float64) for item in incoming}
    # 1. post every receive before the clock starts: chunk (s, j) here is the left
    #    neighbour's chunk (s - 1, j), sent under that chunk's tag
    works = {}
    for item in incoming:
        tag = _tag((item[0] - 1, item[1]), layout.chunks_per_block)
        works[item] = (dist.irecv(received[item], left, tag=_DATA_TAG + tag),
                       dist.irecv(stamps[item], left, tag=_TIME_TAG + tag))
    sends, keep_alive, done_at = [], [], {}

    def trigger(item) -> None:
        # the chunk's counter is full: add the partial in, then send it on (or keep it)
        if item[0] > 0:
            start = time.perf_counter()
            out[rows[item]] += received[item]
            timeline.record(f"reduce {block_of(item, rank, p)}.{item[1]}", "compute", start, time.perf_counter())
        if item[0] == p - 1:
            done_at[item] = time.perf_counter()
            return
        tag = _tag(item, layout.chunks_per_block)
        transfer = net.isend(out[rows[item]], right, name=f"send {block_of(item, rank, p)}.{item[1]}",
                             tag=_DATA_TAG + tag)
        stamp = torch.tensor([transfer.done_s], dtype=torch.float64)
        keep_alive.append((stamp, dist.isend(stamp, right, tag=_TIME_TAG + tag)))
        sends.append(transfer)

    # a chunk of ring step s > 0 is complete after two writes: its GEMM rows and the partial
    tracker = ChunkTracker({item: 2 if item[0] > 0 else 1 for item in layout.items}, trigger)
    errors: list[BaseException] = []

    def receive(item) -> None:
        try:
            data, stamp = works[item]
            data.wait()
            stamp.wait()
            delay = float(stamps[item][0]) - time.perf_counter()
            if delay > 0:  # the bytes are here early; the modelled link delivers them at done_s
                time.sleep(delay)
            tracker.record(item)
        except BaseException as err:  # re-raised on the GEMM thread below
            errors.append(err)

    dist.barrier()
    timeline.reset()
    threads = [threading.Thread(target=receive, args=(item,), daemon=True) for item in incoming]
    for thread in threads:
        thread.start()
    # 2. the GEMM, group by group; each finished row chunk counts one write
    for index, group in enumerate(layout.groups):
        with net.compute(f"gemm {index}"):
            for item in group:
                torch.matmul(a[rows[item]], b, out=out[rows[item]])
        for item in group:
            tracker.record(item)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    if not tracker.complete:
        raise RuntimeError(f"chunks never completed: {set(tracker.expected) - set(tracker.fired)}")
    for transfer in sends:
        transfer.wait()
    for _, work in keep_alive:
        work.wait()
    end = max([*done_at.values(), *(t.end_s for t in sends)])
    own = rows[(p - 1, 0)].start
    block = m_rows // p
    return out[own:own + block].clone(), end - timeline.origin


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _agreed_max(value: float) -> float:
    """The largest ``value`` over the ranks (so every rank picks the same link)."""
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def _time_groups(a, b, layout, rank, repeats) -> list[float]:
    """Median seconds of each GEMM group alone (every rank computing at once, no link)."""
    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype)
    rows = {item: item_rows(item, rank, a.shape[0], layout) for item in layout.items}
    samples = [[] for _ in layout.groups]
    for _ in range(repeats):
        dist.barrier()
        for index, group in enumerate(layout.groups):
            start = time.perf_counter()
            for item in group:
                torch.matmul(a[rows[item]], b, out=out[rows[item]])
            samples[index].append(time.perf_counter() - start)
    return [_agreed_max(_median(s)) for s in samples]


def schedule_worker(rank: int, world_size: int, spec: ExperimentSpec) -> dict:
    """Measure every :class:`ScheduleRun` of ``spec`` on this rank (run by ``comm.launch``).

    Returns a dict with ``gemm_s`` (whole GEMM alone), and per run (in ``spec.runs`` order):
    ``link`` (latency, bandwidth), ``group_s`` (GEMM groups alone), ``reduce_s`` (one chunk
    addition), ``totals_s`` (one per repeat), ``spans`` (per repeat), ``max_abs_error``
    against a plain all-reduce, and ``output`` when ``spec.return_outputs``.
    """
    check_rows(spec.m, world_size, 1)
    gen = torch.Generator().manual_seed(spec.seed * 1000 + rank)
    a = torch.randn(spec.m, spec.k, generator=gen) / spec.k ** 0.5
    b = torch.randn(spec.k, spec.n, generator=gen)
    full = a @ b
    for _ in range(spec.warmup):
        torch.matmul(a, b, out=full)
    gemm_s = _time_groups(a, b, make_layout("sequential", world_size), rank, spec.repeats)[0]
    reference = full.clone()
    dist.all_reduce(reference)
    block = spec.m // world_size
    reference = reference[rank * block:(rank + 1) * block]
    out_bytes = full.numel() * full.element_size()
    results = []
    for run in spec.runs:
        layout = make_layout(run.schedule, world_size, run.chunks)
        check_rows(spec.m, world_size, layout.chunks_per_block)
        link = link_for_ratio(gemm_s, out_bytes, world_size, run.comm_ratio, spec.latency_s)
        group_s = _time_groups(a, b, layout, rank, spec.repeats)
        chunk = torch.zeros(block // layout.chunks_per_block, spec.n)
        received = torch.ones_like(chunk)
        adds = []
        for _ in range(5):
            start = time.perf_counter()
            chunk += received
            adds.append(time.perf_counter() - start)
        totals, spans, output = [], [], None
        for _ in range(spec.repeats):
            timeline = Timeline(rank)
            net = P2PLink(link, timeline=timeline, contention=run.contention)
            output, seconds = run_schedule(a, b, layout, net, timeline)
            totals.append(seconds)
            spans.append(timeline.spans)
        results.append({
            "run": run,
            "link": (link.latency_s, link.bandwidth_bytes_per_s),
            "group_s": group_s,
            "reduce_s": _agreed_max(_median(adds)),
            "totals_s": totals,
            "spans": spans,
            "max_abs_error": float((output - reference).abs().max()),
            "output": output if spec.return_outputs else None,
        })
    return {"gemm_s": gemm_s, "out_bytes": out_bytes, "runs": results}
