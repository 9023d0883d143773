"""A real slow link for a chosen ``a / c``: each rank's NIC throttled by the kernel until one
decode step's all-reduce takes ``a = ratio * c``.

Inside :func:`companion.comm.launch` run with a :class:`companion.comm.ShapedLink` every rank sits
in its own network namespace behind a token-bucket filter, and every byte gloo sends really waits
for the kernel. The all-reduce time at rate ``R`` is close to ``a(R) = a0 + W / R``: a floor
``a0`` that no rate removes (gloo's threads, system calls, TCP acknowledgements, waking the
receiver) plus ``W`` bytes of frames that cross at rate ``R``. The ranks measure ``a0`` at the
launch's own (fast) rate and ``a(R1)`` at one probe rate, which gives ``W``, then solve for the rate
of each target. A target below the floor cannot be reached by any rate; it runs at the launch's
rate and is reported as unreachable, never silently moved.

Each rank reshapes only its own egress (:func:`companion.comm.reshape_own_link`), so every rank
makes the same change, from the same agreed measurements, and a barrier follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from companion import comm
from companion.comm.link_fit import time_once
from companion.comm.shaped_link import ETHERNET_HEADER_BYTES

#: The probe rate makes the wire time about this many module computes (well above the noise).
PROBE_WIRE_IN_C = 2.0
#: A target within this fraction above the floor is called unreachable: the rate would be huge
#: and the measured time mostly noise.
FLOOR_MARGIN = 0.10
#: All-reduces timed per calibration point (their median is kept).
CALIBRATION_ALL_REDUCES = 15


@dataclass(frozen=True)
class ShapedPerCompute:
    """A real link (the kernel's token bucket on each rank's NIC) sized so that one decode step's
    all-reduce takes ``ratio`` times one module's compute ``c``.

    Needs the ranks in a shaped network: ``measure_speed(..., link=comm.ShapedLink(rate))``, where
    ``rate`` is the fast link every other setting of the launch runs over.
    """

    ratio: float

    def __post_init__(self) -> None:
        if not self.ratio > 0:
            raise ValueError(f"ratio must be > 0, got {self.ratio!r}")


def shallow(rate_bytes_per_s: float, mtu: int = 1500) -> comm.ShapedLink:
    """A :class:`~companion.comm.ShapedLink` of ``rate_bytes_per_s`` whose bucket holds two frames
    (or 0.5 ms of the rate, if more): a deep bucket would let a whole small all-reduce through at
    line rate, and the rate would not show in its time."""
    frame = mtu + ETHERNET_HEADER_BYTES
    burst = max(2 * frame, int(rate_bytes_per_s * 5e-4))
    return comm.ShapedLink(rate_bytes_per_s / comm.BYTES_PER_S_PER_GBPS, burst_bytes=burst, mtu=mtu)


def timed_all_reduce_s(nbytes: int, n: int = CALIBRATION_ALL_REDUCES) -> float:
    """Median seconds of ``n`` blocking all-reduces of ``nbytes`` of fp32, the slowest rank's."""
    x = torch.zeros(max(1, nbytes // 4), device=comm.device())
    dist.all_reduce(x)  # warm-up: the connection's buffers
    samples = [time_once("all_reduce", dist.get_rank(), x) for _ in range(n)]
    worst = torch.tensor([float(np.median(samples))], dtype=torch.float64, device=comm.device())
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    return float(worst)


def set_link(link: comm.ShapedLink) -> None:
    """Every rank reshapes its own NIC to ``link``, then all wait for each other."""
    comm.reshape_own_link(link)
    dist.barrier()


def calibrate(shaped: dict, c: float, nbytes: int, base: comm.ShapedLink) -> dict:
    """Per setting name of ``shaped`` (name -> :class:`ShapedPerCompute`), the link that gives it.

    Returns ``{name: {"link", "rate_gbit_s", "target_allreduce_s", "floor_allreduce_s",
    "probe_allreduce_s", "probe_rate_gbit_s", "wire_bytes", "reachable"}}``; the network is left
    at ``base``. ``c``: seconds of one module's compute (agreed by the ranks); ``nbytes``: one
    decode step's all-reduce payload.
    """
    if not isinstance(base, comm.ShapedLink):
        raise ValueError("ShapedPerCompute settings need the ranks in a shaped network: "
                         "measure_speed(..., link=comm.ShapedLink(rate))")
    set_link(base)
    floor = timed_all_reduce_s(nbytes)
    # a rate whose wire time alone would be about PROBE_WIRE_IN_C module computes
    probe = shallow(nbytes / (PROBE_WIRE_IN_C * c), base.mtu)
    set_link(probe)
    probed = timed_all_reduce_s(nbytes)
    set_link(base)
    wire_bytes = max(probed - floor, 0.0) * probe.rate_bytes_per_s
    out = {}
    for name, setting in shaped.items():
        target = setting.ratio * c
        reachable = wire_bytes > 0 and target > (1 + FLOOR_MARGIN) * floor
        link = shallow(wire_bytes / (target - floor), base.mtu) if reachable else base
        out[name] = {"link": link, "rate_gbit_s": link.rate_gbit_s, "target_allreduce_s": target,
                     "floor_allreduce_s": floor, "probe_allreduce_s": probed,
                     "probe_rate_gbit_s": probe.rate_gbit_s, "wire_bytes": wire_bytes,
                     "reachable": bool(reachable)}
    return out
