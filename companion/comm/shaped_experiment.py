"""Does the alpha-beta overlap model predict a real slow network? A test it was not fed.

Each rate is judged in one launch of processes over the shaped network (:func:`judged_worker`),
which makes three kinds of run:

1. **link calibration** (first): a message-size sweep of all-reduces over the
   :class:`~companion.comm.ShapedLink`, fitted by :func:`~companion.comm.link_fit.fit_link` to
   give alpha and beta.
2. **compute calibration**: the schedule's compute steps alone, no communication in flight;
   the median step time is ``c``. One calibration run precedes each judged repeat, in the same
   processes, so a drift of this machine's speed (frequency, a neighbour's load) reaches the
   calibration and the judged run alike; a calibration in processes of its own, minutes
   earlier, once read 15 % fast and failed the check for that reason alone.
3. **the judged run**: sequential and overlapped schedules of compute steps and real gloo
   all-reduces over the same shaped network. No sleep and no model anywhere.

The prediction (:func:`predict`) feeds only ``c`` from (2) and the fitted link from (1) to the
event model (:func:`~companion.comm.overlap.simulate`); the judged run's own spans never enter
it. :func:`compare` runs them at several rates and returns predicted against measured. A first,
separate compute calibration (:func:`compute_worker`) only *chooses* the rates.

The judged network uses jumbo frames (:data:`JUDGED_MTU`), as data-centre fabrics do. At the
Ethernet MTU of 1500 bytes the shaper releases one small frame at a time and gloo's threads pay
CPU for every one: :func:`cpu_cost` measures it, and on a two-core machine that CPU comes out of
the very compute the overlapped schedule hides the transfer behind, which the event model does not
charge.
"""

from __future__ import annotations

import resource
import statistics
import time

import torch
import torch.distributed as dist

from .cost_model import BYTES_PER_S_PER_GBPS, Link
from .devices import device
from .launcher import launch
from .link_fit import default_sizes, fit_link, sweep_worker, time_once
from .modelled_link import ModelledLink
from .overlap import run_schedule, simulate
from .shaped_link import IP_TCP_HEADER_BYTES, ShapedLink
from .timeline import Timeline, summarize, summarize_rank

MODES = ("sequential", "overlapped")
#: The MTU (bytes) of the judged network's veths: jumbo frames, so that gloo's per-frame CPU
#: (:func:`cpu_cost`) stays near what the same all-reduce costs on bare loopback.
JUDGED_MTU = 9000
#: beta is fitted on messages of at least this many token buckets, so the bucket's free burst
#: is at most a sixteenth of a fitted message (smaller ones pull the fitted beta up).
FIT_MIN_BURSTS = 16


def _operands(rank: int, dim: int, seed: int):
    gen = torch.Generator().manual_seed(seed + rank)
    dev = device()
    a = torch.randn(dim, dim, generator=gen, device="cpu").to(dev)  # seeded on the CPU, then moved
    return a, torch.randn(dim, dim, generator=gen, device="cpu").to(dev)


def compute_worker(rank: int, world_size: int, n_steps: int, repeats: int, matmuls: int, dim: int,
                   seed: int = 0) -> list[float]:
    """The compute calibration: this rank's step times (s), ``repeats * n_steps`` of them."""
    a, b = _operands(rank, dim, seed)
    timeline = Timeline(rank)
    net = ModelledLink(None, timeline=timeline)
    run_schedule(net, timeline, "compute_only", 2, torch.zeros(1, device=a.device), a, b, matmuls)  # warm-up
    steps = []
    for _ in range(repeats):
        run_schedule(net, timeline, "compute_only", n_steps, torch.zeros(1, device=a.device), a, b,
                     matmuls)
        steps += [s.duration_s for s in timeline.spans if s.kind == "compute"]
    return steps


def cpu_cost_worker(rank: int, world_size: int, numel: int, repeats: int) -> list[dict]:
    """Wall and CPU seconds of ``repeats`` blocking all-reduces of ``numel`` fp32, nothing else running.

    One record per repeat: ``wall_s``, ``cpu_s`` (this process, every thread: gloo's included) and
    ``wakeups`` (voluntary context switches of the process, as a float: a count of its threads going to sleep
    and being woken).
    """
    gen = torch.Generator().manual_seed(rank)
    x = torch.randn(numel, generator=gen, device="cpu").to(device())  # seeded on the CPU, then moved
    dist.all_reduce(x)  # warm-up: the connection's buffers
    out = []
    for _ in range(repeats):
        dist.barrier()
        cpu0, switches0 = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
        wall = time_once("all_reduce", rank, x)
        out.append({"wall_s": wall, "cpu_s": time.process_time() - cpu0,
                    "wakeups": float(resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches0)})
    return out


def judged_worker(rank: int, world_size: int, payload_numel: int, n_steps: int, repeats: int, matmuls: int,
                  dim: int, sweep_sizes: list[int], sweep_repeats: int, seed: int = 0,
                  cpu_repeats: int = 5) -> dict:
    """Link calibration (a sweep, then the payload's CPU cost), then the judged schedules.

    Returns ``{"sweep": sweep_worker records, "comm_cpu": cpu_cost_worker records of the payload,
    "compute_steps_s": [...], "runs": [{"mode", "repeat", "wall_s", "spans"}]}``.
    ``compute_steps_s`` are the step times (s) of the compute-only run that precedes each repeat
    (the calibration); ``wall_s`` is this rank's own duration from the barrier to its last span
    (no clock is compared across ranks). Run over a shaped network.
    """
    sweep = sweep_worker(rank, world_size, sweep_sizes, sweep_repeats, operations=("all_reduce",))
    comm_cpu = cpu_cost_worker(rank, world_size, payload_numel, cpu_repeats)
    a, b = _operands(rank, dim, seed)
    gen = torch.Generator().manual_seed(seed + 100 + rank)
    payload = torch.randn(payload_numel, generator=gen, device="cpu").to(device())
    timeline = Timeline(rank)
    net = ModelledLink(None, timeline=timeline)  # bare: records spans, adds no delay
    run_schedule(net, timeline, "overlapped", 1, payload, a, b, matmuls)  # warm-up
    runs, compute_steps = [], []
    for repeat in range(repeats):
        run_schedule(net, timeline, "compute_only", n_steps, payload, a, b, matmuls)
        compute_steps += [s.duration_s for s in timeline.spans if s.kind == "compute"]
        for mode in MODES:
            run_schedule(net, timeline, mode, n_steps, payload, a, b, matmuls)
            spans = timeline.spans
            runs.append({"mode": mode, "repeat": repeat, "wall_s": summarize_rank(spans)["wall_s"], "spans": spans})
    return {"sweep": sweep, "comm_cpu": comm_cpu, "compute_steps_s": compute_steps, "runs": runs}


def cpu_cost(rate_gbit_s: float, mtus=(1500, JUDGED_MTU), *, world_size: int = 2, numel: int = 1 << 20,
             repeats: int = 5, timeout_s: float = 120.0) -> list[dict]:
    """What an all-reduce of ``numel`` fp32 costs the CPU, on bare loopback and shaped at each MTU.

    Returns one row per network: ``network`` (a label), ``mtu`` (None for loopback), ``frames``
    (full TCP segments one rank sends: ``2 (p-1)/p`` of the payload over ``mtu - 52`` bytes each),
    and the medians over ranks and repeats of ``wall_s``, ``cpu_s``, ``wakeups`` and
    ``cpu_fraction`` = CPU / wall, the share of a core the communication takes from the compute.
    """
    rows = []
    for mtu in (None, *mtus):
        link = None if mtu is None else ShapedLink(rate_gbit_s, mtu=mtu)
        out = launch(cpu_cost_worker, world_size, numel, repeats, link=link, timeout_s=timeout_s)
        recs = [r for rank_recs in out for r in rank_recs]
        wire = 2 * (world_size - 1) / world_size * 4 * numel
        row = {"network": "bare loopback" if mtu is None else f"shaped {rate_gbit_s:g} Gbit/s, MTU {mtu}",
               "mtu": mtu, "frames": None if mtu is None else wire / (mtu - IP_TCP_HEADER_BYTES)}
        for key in ("wall_s", "cpu_s", "wakeups"):
            row[key] = statistics.median(r[key] for r in recs)
        row["cpu_fraction"] = statistics.median(r["cpu_s"] / r["wall_s"] for r in recs)
        rows.append(row)
    return rows


def predict(compute_s: float, link: Link, payload_bytes: int, world_size: int, n_steps: int, mode: str,
            contention: float = 0.0) -> float:
    """The event model's wall time of ``n_steps`` steps of ``compute_s`` each with an all-reduce over ``link``.

    ``contention``: the share of a core an all-reduce in flight takes from the compute beside it
    (its CPU seconds over its wall seconds, measured alone); an overlapped compute step is
    stretched by that times its overlap with the transfer.
    """
    return predict_steps([[compute_s] * n_steps for _ in range(world_size)], link, payload_bytes, mode, contention)


def predict_steps(compute_steps_s: list[list[float]], link: Link, payload_bytes: int, mode: str,
                  contention: float = 0.0) -> float:
    """The event model's wall time (s) when rank ``r`` computes ``compute_steps_s[r][k]`` in step ``k``.

    Fed a calibration run's own step times, rank by rank, the model sees what a single median
    hides: every all-reduce waits for the slower rank's step, and the mean of a maximum exceeds
    the maximum of the means.
    """
    comm_s = link.allreduce_time(payload_bytes, len(compute_steps_s))
    return summarize(simulate(compute_steps_s, comm_s, mode, contention=contention))["wall_s"]


def rate_for_ratio(ratio: float, compute_s: float, payload_bytes: int, world_size: int,
                   mtu: int = 1500) -> float:
    """The shaping rate (Gbit/s) at which an all-reduce of ``payload_bytes`` should take ``ratio * compute_s``.

    Used only to *choose* rates that put communication at a given multiple of this machine's
    compute step; the prediction itself uses the fitted link.
    """
    if not ratio > 0 or not compute_s > 0:
        raise ValueError(f"ratio and compute_s must be > 0, got {ratio!r}, {compute_s!r}")
    probe = ShapedLink(1.0, mtu=mtu)
    wire_bytes = 2 * (world_size - 1) / world_size * payload_bytes
    return wire_bytes / (ratio * compute_s * probe.payload_bytes_per_s)


def compare(ratios=(0.5, 1.0, 2.0), *, world_size: int = 2, payload_numel: int = 1 << 20, n_steps: int = 4,
            repeats: int = 3, matmuls: int = 60, dim: int = 384, sweep_sizes: list[int] | None = None,
            sweep_repeats: int = 3, calibration_repeats: int = 3, seed: int = 0, timeout_s: float = 300.0,
            mtu: int = JUDGED_MTU) -> dict:
    """Calibrate compute, then at each comm/compute ``ratio`` shape a network, fit it and judge the model.

    Returns a dict: ``first_compute_s`` (the step that chose the rates), ``compute_s`` (the median
    over rates of each rate's own calibrated step), ``payload_bytes``, ``mtu`` (every veth's) and ``rows``, one per
    rate and schedule, with ``compute_s`` (that rate's calibrated step, fed to the model),
    ``rate_gbit_s``, ``expected_beta_gbit_s`` (the shaper's payload
    rate), the fitted ``alpha_s``/``beta_gbit_s`` and ``fit_rms_rel_residual``, ``comm_cpu_s``
    (CPU seconds of one payload all-reduce, measured alone after the sweep) and ``contention``
    (its CPU over its wall time), ``predicted_s`` (the median over repeats of the model fed the
    step times of the calibration before that repeat, rank by rank, and charged that CPU),
    ``predicted_no_cpu_s`` (the same with communication free for the CPU),
    ``predicted_median_step_s`` (every step of every rank at the median ``compute_s``, CPU charged), ``measured_s`` (median over repeats of the slowest rank's wall), the
    repeats' ``measured_min_s``/``measured_max_s`` and ``rel_error`` = measured / predicted - 1.
    """
    payload_bytes = 4 * payload_numel
    t0 = time.perf_counter()
    calib = launch(compute_worker, world_size, n_steps, calibration_repeats, matmuls, dim, seed,
                   timeout_s=timeout_s)
    first_compute_s = statistics.median(t for rank_steps in calib for t in rank_steps)  # chooses rates only
    rows, compute_by_ratio = [], {}
    for ratio in ratios:
        rate = round(rate_for_ratio(ratio, first_compute_s, payload_bytes, world_size, mtu), 4)
        shaped = ShapedLink(rate, mtu=mtu)
        # up to twice the payload, in steps of two, and at least three sizes past FIT_MIN_BURSTS buckets
        largest = max(2 * payload_bytes, 4 * FIT_MIN_BURSTS * shaped.burst_bytes)
        sizes = sweep_sizes or default_sizes(16 * 1024, largest, 2)
        out = launch(judged_worker, world_size, payload_numel, n_steps, repeats, matmuls, dim, sizes,
                     sweep_repeats, seed, link=shaped, timeout_s=timeout_s)
        sweep = out[0]["sweep"]
        fit = fit_link("all_reduce", [r["nbytes"] for r in sweep], [r["median_s"] for r in sweep], world_size,
                       min_bytes=min(FIT_MIN_BURSTS * shaped.burst_bytes, sizes[-2]))
        compute_s = statistics.median(t for rank_out in out for t in rank_out["compute_steps_s"])
        compute_by_ratio[ratio] = compute_s
        cpu = [rec for rank_out in out for rec in rank_out["comm_cpu"]]
        comm_cpu_s = statistics.median(rec["cpu_s"] for rec in cpu)
        contention = statistics.median(rec["cpu_s"] / rec["wall_s"] for rec in cpu)
        for mode in MODES:
            walls = [max(out[r]["runs"][i]["wall_s"] for r in range(world_size))
                     for i, run in enumerate(out[0]["runs"]) if run["mode"] == mode]
            # one prediction per repeat, from the calibration run just before it; their median
            calibrations = [[rank_out["compute_steps_s"][i * n_steps:(i + 1) * n_steps] for rank_out in out]
                            for i in range(repeats)]
            predicted = statistics.median(predict_steps(steps, fit.link, payload_bytes, mode, contention)
                                          for steps in calibrations)
            uncharged = statistics.median(predict_steps(steps, fit.link, payload_bytes, mode)
                                          for steps in calibrations)
            median_step = predict(compute_s, fit.link, payload_bytes, world_size, n_steps, mode, contention)
            measured = statistics.median(walls)
            rows.append({"ratio": ratio, "compute_s": compute_s, "rate_gbit_s": shaped.rate_gbit_s,
                         "expected_beta_gbit_s": shaped.payload_bytes_per_s / BYTES_PER_S_PER_GBPS, "mode": mode,
                         "alpha_s": fit.alpha_s, "beta_gbit_s": fit.beta_gbit_s,
                         "fit_rms_rel_residual": fit.rms_rel_residual, "fit": fit.as_dict(),
                         "comm_s": fit.link.allreduce_time(payload_bytes, world_size),
                         "comm_cpu_s": comm_cpu_s, "contention": contention,
                         "predicted_s": predicted, "predicted_no_cpu_s": uncharged,
                         "predicted_median_step_s": median_step, "measured_s": measured, "measured_min_s": min(walls),
                         "measured_max_s": max(walls), "rel_error": measured / predicted - 1.0})
    return {"compute_s": statistics.median(compute_by_ratio.values()), "first_compute_s": first_compute_s,
            "payload_bytes": payload_bytes, "mtu": mtu, "world_size": world_size, "n_steps": n_steps,
            "repeats": repeats, "rows": rows, "elapsed_s": time.perf_counter() - t0}


def markdown_table(result: dict) -> str:
    """A Markdown table of :func:`compare`'s rows (times in ms, rates in Gbit/s)."""
    out = ("| rate set | β fitted | β expected | α fitted (ms) | CPU share of the all-reduce | schedule "
           "| predicted from one median step (ms) | predicted, CPU left free (ms) | predicted (ms) | measured (ms) "
           "| error |\n|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n")
    for r in result["rows"]:
        out += (f"| {r['rate_gbit_s']:.3f} | {r['beta_gbit_s']:.3f} | {r['expected_beta_gbit_s']:.3f} | "
                f"{1e3 * r['alpha_s']:.2f} | {r['contention']:.3f} | {r['mode']} | "
                f"{1e3 * r['predicted_median_step_s']:.0f} | {1e3 * r['predicted_no_cpu_s']:.0f} | "
                f"{1e3 * r['predicted_s']:.0f} | {1e3 * r['measured_s']:.0f} | {100 * r['rel_error']:+.1f} % |\n")
    return out


def cpu_markdown_table(rows: list[dict]) -> str:
    """A Markdown table of :func:`cpu_cost`'s rows (times in ms)."""
    out = ("| network | full frames sent per rank | wall time (ms) | CPU time (ms) | wake-ups | CPU share |\n"
           "|---|---:|---:|---:|---:|---:|\n")
    for r in rows:
        frames = "" if r["frames"] is None else f"{r['frames']:.0f}"
        out += (f"| {r['network']} | {frames} | {1e3 * r['wall_s']:.1f} | {1e3 * r['cpu_s']:.1f} | "
                f"{r['wakeups']:.0f} | {r['cpu_fraction']:.2f} |\n")
    return out
