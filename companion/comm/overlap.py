"""The overlap experiment: a training-like loop of compute steps and gradient all-reduces.

Each of ``n_steps`` steps computes for a while (``matmuls`` products of ``dim x dim`` matrices)
and all-reduces a payload of ``payload_numel`` fp32 values. The *sequential* schedule computes,
then all-reduces; the *overlapped* schedule issues the all-reduce (of the previous step's
gradient, say) asynchronously and computes while it is in flight, as DDP's buckets, DiLoCo's
streaming fragments or CO2's stale outer update do. The model of a step is
``c + m`` (sequential) and ``max(c, m)`` (overlapped), with ``c`` the measured compute time and
``m`` the link's all-reduce time; :func:`model_spans` lays those out as a timeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .cost_model import Link
from .device_timing import stream_done
from .events import Schedule
from .devices import device
from .modelled_link import ModelledLink
from .timeline import Span, Timeline, summarize

MODES = ("compute_only", "sequential", "overlapped")


@dataclass(frozen=True)
class OverlapSetting:
    """One configuration of the experiment: a link (``None`` = bare gloo) and a payload size."""

    name: str
    link: Link | None
    payload_numel: int

    @property
    def payload_bytes(self) -> int:
        return 4 * self.payload_numel

    def comm_s(self, world_size: int) -> float:
        """Modelled all-reduce time of one step (s); NaN for bare gloo, which has no model."""
        return float("nan") if self.link is None else self.link.allreduce_time(self.payload_bytes, world_size)


def _compute(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor, matmuls: int) -> None:
    """``matmuls`` products ``a @ b`` into ``out``; returns when they are done, on a GPU too.

    On a GPU only the stream the products were queued on is waited for (a CUDA event), so an
    all-reduce in flight on NCCL's stream beside them does not lengthen the compute span.
    """
    for _ in range(matmuls):
        torch.mm(a, b, out=out)
    stream_done(out.device)


def run_schedule(net: ModelledLink, timeline: Timeline, mode: str, n_steps: int, payload: torch.Tensor,
                 a: torch.Tensor, b: torch.Tensor, matmuls: int) -> None:
    """Run ``n_steps`` steps of one schedule, recording spans on ``timeline`` (reset first)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = torch.empty(a.shape[0], b.shape[1], device=a.device)
    net.barrier()
    timeline.reset()
    for step in range(n_steps):
        if mode == "overlapped":
            handle = net.all_reduce(payload, async_op=True, name=f"all_reduce {step}")
            with net.compute(f"step {step}"):
                _compute(a, b, out, matmuls)
            handle.wait()
        else:
            with net.compute(f"step {step}"):
                _compute(a, b, out, matmuls)
            if mode == "sequential":
                net.all_reduce(payload, name=f"all_reduce {step}")


def overlap_worker(rank: int, world_size: int, settings: list[OverlapSetting], n_steps: int = 4,
                   repeats: int = 3, matmuls: int = 60, dim: int = 256, contention: float = 0.0,
                   seed: int = 0) -> list[dict]:
    """Run every setting x mode x repeat on this rank; return one record per run.

    Record: ``setting`` (index), ``mode``, ``repeat``, ``spans`` (this rank's, seconds from the
    run's start) and ``cpu_s``, the CPU seconds the whole process (every thread, the backend's
    included) used during the run. Modes are interleaved within each repeat so that slow phases of a shared
    machine hit every mode alike.
    """
    dev = device()
    gen = torch.Generator().manual_seed(seed + rank)
    # seeded on the CPU, then moved: the same operands on every device
    a = torch.randn(dim, dim, generator=gen, device="cpu").to(dev)
    b = torch.randn(dim, dim, generator=gen, device="cpu").to(dev)
    timeline = Timeline(rank)
    records = []
    # warm up: the first collectives and matmuls of a process are slow
    warm = ModelledLink(None, timeline=timeline)
    run_schedule(warm, timeline, "overlapped", 2, torch.zeros(1024, device=dev), a, b, matmuls)
    for repeat in range(repeats):
        for index, setting in enumerate(settings):
            net = ModelledLink(setting.link, timeline=timeline, contention=contention, record_issue=True)
            payload = torch.randn(setting.payload_numel, generator=gen, device="cpu").to(dev)
            for mode in MODES:
                if mode == "compute_only" and index > 0:
                    continue  # one compute-only baseline per repeat is enough
                cpu0 = time.process_time()
                run_schedule(net, timeline, mode, n_steps, payload, a, b, matmuls)
                records.append({"setting": index, "mode": mode, "repeat": repeat, "spans": timeline.spans,
                                "cpu_s": time.process_time() - cpu0})
    return records


def model_spans(compute_s: list[float], comm_s: float, mode: str, rank: int = 0) -> list[Span]:
    """The timeline the model predicts for one rank, given each step's compute time and the comm time.

    ``sequential``: compute, then communicate; ``overlapped``: both start together and the step
    ends when the longer one does; ``compute_only``: compute back to back. It is :func:`simulate`
    for one rank, relabelled ``rank``.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not comm_s >= 0:
        raise ValueError(f"comm_s must be >= 0, got {comm_s!r}")
    for step, c in enumerate(compute_s):
        if not c >= 0:
            raise ValueError(f"compute times must be >= 0, got {c!r} at step {step}")
    return [Span(rank, s.name, s.kind, s.start_s, s.end_s) for s in simulate([list(compute_s)], comm_s, mode)]


def simulate(compute_s: list[list[float]], comm_s: float, mode: str,
             issue_s: list[list[float]] | None = None, *, contention: float = 0.0) -> list[Span]:
    """The model's timeline of every rank: ``compute_s[r][k]`` is rank ``r``'s compute time in step ``k``.

    ``issue_s[r][k]`` (default 0) is the host time rank ``r`` spends issuing step ``k``'s
    all-reduce before the link takes it. The schedule is played out by the book's one event
    model (:class:`~companion.comm.events.Schedule`): the all-reduce of a step is one
    collective over all ranks, which starts when the *last* rank has issued it and every link is
    free, lasts ``comm_s`` seconds and completes on every rank together. So a late rank holds
    the others back: no rank leaves step ``k`` before (last issue) + ``comm_s``.
    ``contention`` is ``c`` of :class:`~companion.comm.ModelledLink`: an overlapped compute
    step is stretched by ``c`` times its overlap with the all-reduce in flight.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not compute_s or len({len(steps) for steps in compute_s}) != 1:
        raise ValueError("compute_s must hold the same number of steps for every rank")
    if not comm_s >= 0:
        raise ValueError(f"comm_s must be >= 0, got {comm_s!r}")
    ranks = range(len(compute_s))
    n_steps = len(compute_s[0])
    if issue_s is None:
        issue_s = [[0.0] * n_steps for _ in ranks]
    if len(issue_s) != len(compute_s) or any(len(steps) != n_steps for steps in issue_s):
        raise ValueError("issue_s must have the shape of compute_s")
    sched = Schedule(len(compute_s), contention=contention)
    last: list[tuple[int, ...]] = [() for _ in ranks]  # what each rank's next step waits for
    for step in range(n_steps):
        if mode == "compute_only":
            for r in ranks:
                last[r] = (sched.compute(r, compute_s[r][step], after=last[r], name=f"step {step}"),)
            continue
        issued, computed = [], []
        for r in ranks:
            # sequential: compute, issue, transfer; overlapped: issue, then compute beside the transfer
            after = last[r]
            if mode == "sequential":
                after = (sched.compute(r, compute_s[r][step], after=after, name=f"step {step}"),)
            if issue_s[r][step] > 0:
                after = (sched.compute(r, issue_s[r][step], after=after, name=f"issue all_reduce {step}",
                                       contended=False),)
            issued.append(after)
            if mode == "overlapped":
                computed.append(sched.compute(r, compute_s[r][step], after=after, name=f"step {step}"))
        reduce = sched.collective(ranks, comm_s, after=[d for deps in issued for d in deps],
                                  name=f"all_reduce {step}")
        for r in ranks:
            last[r] = (reduce, computed[r]) if mode == "overlapped" else (reduce,)
    spans = sched.run().spans()
    return sorted(spans, key=lambda s: s.rank)  # rank by rank, each in issue order (a stable sort)


def _step_of(span: Span) -> int:
    return int(span.name.rsplit(" ", 1)[-1])


def compute_times(spans: list[Span]) -> list[list[float]]:
    """Each rank's compute time per step, ``[rank][step]``, issue spans left out (ranks sorted)."""
    ranks = sorted({s.rank for s in spans})
    out = []
    for r in ranks:
        steps = [s for s in spans if s.rank == r and s.kind == "compute" and s.name.startswith("step ")]
        out.append([s.duration_s for s in sorted(steps, key=_step_of)])
    return out


def issue_times(spans: list[Span]) -> list[list[float]]:
    """Each rank's host time issuing each step's all-reduce, ``[rank][step]`` (0 where none was recorded)."""
    ranks = sorted({s.rank for s in spans})
    n_steps = max(len(c) for c in compute_times(spans))
    out = []
    for r in ranks:
        row = [0.0] * n_steps
        for s in spans:
            if s.rank == r and s.kind == "compute" and s.name.startswith("issue "):
                row[_step_of(s)] += s.duration_s
        out.append(row)
    return out


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def analyse(results: list[list[dict]], settings: list[OverlapSetting]) -> list[dict]:
    """Turn :func:`overlap_worker` results of every rank into one row per (setting, mode).

    For every run the prediction (:func:`simulate`) takes every rank's measured compute and
    issue times and the setting's modelled all-reduce time (for bare gloo: the median all-reduce time measured in its
    sequential runs) and builds the model's timeline; the measured and predicted figures come
    from :func:`~companion.comm.summarize` over all ranks (worst rank). Each row holds the
    medians over repeats: ``wall_s``, ``model_wall_s``, ``rel_error`` (measured / model - 1),
    ``overlap_efficiency``, ``model_efficiency``, ``exposed_comm_s``, ``compute_s``, ``comm_s``,
    ``cpu_s`` (CPU seconds of the busiest rank's process), and ``model_comm_s`` (one step's communication time the model used). Overlapped rows also
    carry ``saving_fraction``: the wall time overlap saved against the sequential schedule, as a
    fraction of the most it could save, min(compute, comm), in the same repeat (median over
    repeats). Spans can overlap while the CPU
    time-slices between them, so this, not the span overlap, says whether hiding really happened.
    """
    world_size = len(results)
    runs: dict[tuple[int, str, int], list[Span]] = {}
    cpu: dict[tuple[int, str, int], float] = {}
    for rank_records in results:
        for rec in rank_records:
            key = (rec["setting"], rec["mode"], rec["repeat"])
            runs.setdefault(key, []).extend(rec["spans"])
            cpu[key] = max(cpu.get(key, 0.0), rec["cpu_s"])
    rows = []
    for index, setting in enumerate(settings):
        comm_s = setting.comm_s(world_size)
        if setting.link is None:
            measured = [s.duration_s for (i, mode, _), spans in runs.items() if i == index and mode == "sequential"
                        for s in spans if s.kind == "comm"]
            comm_s = _median(measured)
        for mode in MODES:
            keys = sorted(k for k in runs if k[0] == (0 if mode == "compute_only" else index) and k[1] == mode)
            if not keys:
                continue
            figures = {"wall_s": [], "model_wall_s": [], "overlap_efficiency": [], "model_efficiency": [],
                       "exposed_comm_s": [], "compute_s": [], "comm_s": [], "cpu_s": []}
            for key in keys:
                spans = runs[key]
                measured = summarize(spans)
                predicted = summarize(simulate(compute_times(spans), comm_s, mode, issue_times(spans)))
                for name in ("wall_s", "overlap_efficiency", "exposed_comm_s", "compute_s", "comm_s"):
                    figures[name].append(measured[name])
                figures["model_wall_s"].append(predicted["wall_s"])
                figures["cpu_s"].append(cpu[key])
                figures["model_efficiency"].append(predicted["overlap_efficiency"])
            row = {"setting": setting.name, "mode": mode, "repeats": len(keys), "model_comm_s": comm_s,
                   "gbit_per_s": None if setting.link is None else setting.link.gbit_per_s,
                   "latency_s": None if setting.link is None else setting.link.latency_s,
                   "payload_bytes": setting.payload_bytes}
            for name, values in figures.items():
                row[name] = _median(values) if mode != "compute_only" or "eff" not in name else float("nan")
            row["rel_error"] = row["wall_s"] / row["model_wall_s"] - 1.0
            rows.append(row)
        savings = []
        for repeat in sorted({k[2] for k in runs if k[0] == index}):
            seq_spans, ovl_spans = runs.get((index, "sequential", repeat)), runs.get((index, "overlapped", repeat))
            if seq_spans is None or ovl_spans is None:
                continue
            seq, ovl = summarize(seq_spans), summarize(ovl_spans)
            hideable = min(seq["compute_s"], seq["comm_s"])
            if hideable > 0:
                savings.append((seq["wall_s"] - ovl["wall_s"]) / hideable)
        for row in rows:
            if savings and row["setting"] == setting.name and row["mode"] == "overlapped":
                row["saving_fraction"] = _median(savings)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`analyse` rows (times in ms)."""
    head = ("| setting | schedule | model comm / step (ms) | measured wall (ms) | model wall (ms) | error "
            "| overlap eff. | model eff. | saving / possible |\n")
    head += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    body = ""
    for r in rows:
        if r["mode"] == "compute_only":
            continue
        saving = f"{r['saving_fraction']:.2f}" if "saving_fraction" in r else ""
        body += (f"| {r['setting']} | {r['mode']} | {1e3 * r['model_comm_s']:.1f} | {1e3 * r['wall_s']:.1f} | "
                 f"{1e3 * r['model_wall_s']:.1f} | {100 * r['rel_error']:+.1f} % | {r['overlap_efficiency']:.2f} | "
                 f"{r['model_efficiency']:.2f} | {saving} |\n")
    return head + body


def default_settings(payload_numel: int = 62_500, latency_s: float = 1e-3,
                     gbit_per_s: tuple[float, ...] = (0.1, 0.05, 0.025), bare_payload_numel: int = 4_000_000
                     ) -> list[OverlapSetting]:
    """Three modelled links (a 250 kB payload by default) and one bare-gloo run with a 16 MB payload."""
    settings = [OverlapSetting(f"{g:g} Gbit/s", Link.from_gbps(latency_s, g), payload_numel) for g in gbit_per_s]
    settings.append(OverlapSetting("bare gloo", None, bare_payload_numel))
    return settings


def timed(fn, *args, **kwargs):
    """``(result, seconds)`` of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def torchrun_job(payload_numel: int = 1 << 18, n_steps: int = 4, repeats: int = 2, matmuls: int = 20,
                 dim: int = 256):
    """The chapter's overlap experiment over the real network, for :mod:`companion.comm.torchrun`.

    Bare links only (``link=None``): across machines the network itself is the slow link, so
    the spans show how much of a real all-reduce the compute hides. Returns
    ``(overlap_worker, args)``.
    """
    settings = [OverlapSetting("real network", None, payload_numel)]
    return overlap_worker, (settings, n_steps, repeats, matmuls, dim)
