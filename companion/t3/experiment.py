"""The measured experiment: every schedule on real processes, beside the model's prediction.

:func:`run_experiment` checks a :class:`ExperimentSpec`, launches :func:`schedule_worker` on
``world_size`` processes with :func:`companion.comm.launch` (one thread per rank), and returns
one :class:`MeasuredRun` per setting, whose :meth:`MeasuredRun.predict` replays the same
setting in :func:`~companion.t3.schedule_model.simulate_schedule`.

The model is fed in two ways. :meth:`MeasuredRun.predict` gives it the link's parameters, the
contention factor, one addition timed alone, and the time each GEMM group took *in the judged
run* before its contention stretch, with the software overheads of that run: the machine is
shared, so a GEMM's speed drifts between runs, and feeding the model the GEMM the run saw tests
what the model claims (how chunks, sends and contention combine), not the machine's load.
:meth:`MeasuredRun.predict_calibrated` gives it only what calibration measured: each GEMM
group timed alone just before the judged run (every rank computing, no link), and the software
overheads pooled over discarded runs of the setting made before any judged run.
Neither ever sees a judged schedule's total, its sends or its waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from companion import comm
from companion.comm import Link, ModelledLink, Timeline
from companion.comm.clock import left_clock_offset
from companion.comm.device_timing import stream_done

from .layout import check_rows, item_rows, make_layout
from .measured import MeasuredRun, ScheduleRun, median as _median
from .schedules import _refuse_untagged_backend, run_schedule

__all__ = ["ScheduleRun", "ExperimentSpec", "MeasuredRun", "link_for_ratio", "schedule_worker", "run_experiment"]


@dataclass(frozen=True)
class ExperimentSpec:
    """GEMM sizes ``(m x k) @ (k x n)`` per rank, link latency, settings, repeats and seed.

    ``calibration_runs`` runs of each setting precede the judged ``repeats``; only their
    software overheads are kept (for :meth:`MeasuredRun.predict_calibrated`), as their median.
    An odd count makes that median one run's value, so one run slowed by a thread start or a
    busy moment cannot move it (with two, the median is their mean).
    """

    m: int
    k: int
    n: int
    runs: tuple[ScheduleRun, ...]
    repeats: int = 3
    calibration_runs: int = 5
    latency_s: float = 1e-4
    seed: int = 0
    return_outputs: bool = False

    def check(self, world_size: int) -> None:
        """Raise ``ValueError`` if a setting cannot run on ``world_size`` ranks."""
        if world_size < 2:
            raise ValueError(f"the reduce-scatter needs world_size >= 2, got {world_size}")
        for name in ("m", "k", "n", "repeats", "calibration_runs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.runs:
            raise ValueError("runs is empty; give at least one ScheduleRun")
        for run in self.runs:
            check_rows(self.m, world_size, make_layout(run.schedule, world_size, run.chunks).chunks_per_block)


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


def _agreed_max(value: float) -> float:
    """The largest ``value`` over the ranks (so every rank picks the same link)."""
    t = torch.tensor([value], dtype=torch.float64, device=comm.device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def _time_groups(a, b, layout, rank, repeats) -> list[float]:
    """Fastest seconds of each GEMM group alone (every rank computing at once, no link)."""
    out = torch.empty(a.shape[0], b.shape[1], dtype=a.dtype, device=a.device)
    rows = {item: item_rows(item, rank, a.shape[0], layout) for item in layout.items}
    samples = [[] for _ in layout.groups]
    for _ in range(repeats):
        dist.barrier()
        for index, group in enumerate(layout.groups):
            start = time.perf_counter()
            for item in group:
                torch.matmul(a[rows[item]], b, out=out[rows[item]])
            stream_done(a.device)
            samples[index].append(time.perf_counter() - start)
    return [_agreed_max(min(s)) for s in samples]


def _time_reduce(rows: int, cols: int) -> float:
    """Median seconds to add one received ``(rows, cols)`` chunk into the local one."""
    dev = comm.device()
    local, received = torch.zeros(rows, cols, device=dev), torch.ones(rows, cols, device=dev)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        local += received
        stream_done(dev)
        samples.append(time.perf_counter() - start)
    return _agreed_max(_median(samples))


def schedule_worker(rank: int, world_size: int, spec: ExperimentSpec) -> dict:
    """Measure every setting of ``spec`` on this rank (the function ``comm.launch`` runs).

    1. seeded ``A_r`` ``(m, k)`` and ``B_r`` ``(k, n)``; the whole GEMM timed alone gives ``G``;
    2. per setting: the link for its ``comm_ratio`` and one addition timed alone, then
       ``repeats`` runs of the schedule, each from a barrier, keeping each GEMM group's time;
    3. every output block is checked against a plain ``all_reduce`` of the full partials.
    """
    _refuse_untagged_backend()
    dev = comm.device()
    gen = torch.Generator().manual_seed(spec.seed * 1000 + rank)
    # seeded on the CPU, then moved: the same operands on every device
    a = (torch.randn(spec.m, spec.k, generator=gen, device="cpu") / spec.k**0.5).to(dev)
    b = torch.randn(spec.k, spec.n, generator=gen, device="cpu").to(dev)
    full = a @ b  # also warms the GEMM up
    gemm_s = _time_groups(a, b, make_layout("sequential", world_size), rank, spec.repeats)[0]
    reference = full.clone()
    dist.all_reduce(reference)
    block = spec.m // world_size
    reference = reference[rank * block:(rank + 1) * block]
    out_bytes = full.numel() * full.element_size()
    # the left neighbour's clock against this rank's, once: its modelled send times are on it
    clock_offset_s, _ = left_clock_offset()
    results = []
    for run in spec.runs:
        layout = make_layout(run.schedule, world_size, run.chunks)
        link = link_for_ratio(gemm_s, out_bytes, world_size, run.comm_ratio, spec.latency_s)
        # calibration of the software's overheads, pooled over calibration_runs runs of the
        # setting whose totals are thrown away
        issue, wake = [], []
        for _ in range(spec.calibration_runs):
            timeline = Timeline(rank)
            net = ModelledLink(link, timeline=timeline, contention=run.contention)
            _, _, software = run_schedule(a, b, layout, net, timeline, clock_offset_s)
            issue += software["issue_s"]
            wake += software["wake_s"]
        results.append({
            "layout": layout,
            "link": link,
            "reduce_s": _time_reduce(block // layout.chunks_per_block, spec.n),
            "calib_group_s": [], "calib_issue_s": _median(issue),
            "calib_wake_s": _median(wake) if wake else 0.0,
            "group_s": [], "issue_s": [], "wake_s": [], "totals_s": [], "spans": [], "errors": [], "output": None,
        })
    # repeats outermost: every setting sees the same drift of a shared machine's load
    for _ in range(spec.repeats):
        for run, res in zip(spec.runs, results):
            # calibration of the GEMM just before the judged run (a shared machine's speed
            # drifts): each group timed alone, every rank computing, no link
            res["calib_group_s"].append(_time_groups(a, b, res["layout"], rank, 2))
            timeline = Timeline(rank)
            net = ModelledLink(res["link"], timeline=timeline, contention=run.contention)
            output, seconds, software = run_schedule(a, b, res["layout"], net, timeline, clock_offset_s)
            # the model's input: each GEMM group as long as it took in this run, before the
            # contention stretch (the machine's speed drifts from run to run), and the
            # software's median overheads per send and per received partial
            res["group_s"].append(software["gemm_s"])
            res["issue_s"].append(_median(software["issue_s"]))
            res["wake_s"].append(_median(software["wake_s"]) if software["wake_s"] else 0.0)
            res["totals_s"].append(seconds)
            res["spans"].append(timeline.spans)
            res["errors"].append(float((output - reference).abs().max()))
            res["output"] = output.cpu() if spec.return_outputs else None
    for res in results:
        link = res.pop("link")
        res["link"] = (link.latency_s, link.bandwidth_bytes_per_s)
        res["max_abs_error"] = max(res.pop("errors"))
        del res["layout"]
    return {"gemm_s": gemm_s, "out_bytes": out_bytes, "runs": results}


def run_experiment(spec: ExperimentSpec, world_size: int = 2, *, timeout_s: float = 120.0) -> list[MeasuredRun]:
    """Run every setting of ``spec`` on ``world_size`` fresh processes; one result per setting."""
    spec.check(world_size)
    per_rank = comm.launch(schedule_worker, world_size, spec, timeout_s=timeout_s, threads_per_rank=1)
    measured = []
    for index, run in enumerate(spec.runs):
        rows = [r["runs"][index] for r in per_rank]
        totals = [max(row["totals_s"][k] for row in rows) for k in range(spec.repeats)]
        pick = min(range(spec.repeats), key=lambda k: totals[k])
        measured.append(MeasuredRun(
            run=run,
            world_size=world_size,
            link=Link(*rows[0]["link"]),
            gemm_s=per_rank[0]["gemm_s"],
            out_bytes=per_rank[0]["out_bytes"],
            group_s=tuple(tuple(tuple(row["group_s"][k]) for row in rows) for k in range(spec.repeats)),
            reduce_s=rows[0]["reduce_s"],
            issue_s=tuple(tuple(row["issue_s"][k] for row in rows) for k in range(spec.repeats)),
            wake_s=tuple(tuple(row["wake_s"][k] for row in rows) for k in range(spec.repeats)),
            measured_s=totals[pick],
            totals_s=tuple(totals),
            spans=[span for row in rows for span in row["spans"][pick]],
            shown=pick,
            calib_group_s=tuple(tuple(g) for g in rows[0]["calib_group_s"]),
            calib_issue_s=tuple(row["calib_issue_s"] for row in rows),
            calib_wake_s=tuple(row["calib_wake_s"] for row in rows),
            max_abs_error=max(row["max_abs_error"] for row in rows),
            outputs=[row["output"] for row in rows] if spec.return_outputs else None,
        ))
    return measured



def torchrun_job(m: int = 256, k: int = 128, n: int = 64, repeats: int = 2):
    """The three schedules on a small GEMM for :mod:`companion.comm.torchrun`: ``(schedule_worker, (spec,))``.

    Every rank checks its reduced blocks against a plain all-reduce of the partials, so a run
    that completes computed the right answer; the times are the machine's.
    """
    runs = (ScheduleRun("sequential", 1, 1.0), ScheduleRun("coarse", 2, 1.0), ScheduleRun("fine", 4, 1.0))
    # no latency: this GEMM may take well under the default 0.1 ms on a quiet machine, which
    # would leave the link no time for bytes at comm_ratio 1 (link_for_ratio refuses that)
    return schedule_worker, (ExperimentSpec(m=m, k=k, n=n, runs=runs, repeats=repeats, latency_s=0.0),)
