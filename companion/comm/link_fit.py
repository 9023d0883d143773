"""Alpha and beta measured, not assumed: a message-size sweep of real collectives and its fit.

:func:`sweep_worker` times all-reduce, ring reduce-scatter and point-to-point messages of each
size on the real process group (run it with :func:`~companion.comm.launch`, bare or over a
:class:`~companion.comm.ShapedLink`); :func:`fit_link` fits the alpha-beta model of
:class:`~companion.comm.Link` to the medians by least squares on *relative* residuals (so a
4 KiB message, where alpha dominates, weighs as much as a 64 MiB one, where beta does), with
alpha >= 0 and 1/beta >= 0, and a soft-L1 loss (:func:`scipy.optimize.least_squares`) so that
one outlying point cannot move the fit far.

The model each operation is fitted with (``n`` bytes per rank, ``p`` ranks):

=================  =========================================  ======================
operation          time                                       what is timed
=================  =========================================  ======================
``all_reduce``     ``2 (p-1) alpha + 2 (p-1)/p * n / beta``   ``dist.all_reduce``
``reduce_scatter`` ``(p-1) alpha + (p-1)/p * n / beta``       :func:`ring_reduce_scatter_into`
``p2p``            ``alpha + n / beta``                       half a ping-pong
=================  =========================================  ======================
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from scipy.optimize import least_squares, nnls

from .cost_model import BYTES_PER_S_PER_GBPS, Link
from .device_timing import stream_done
from .devices import device
from .ring import ring_reduce_scatter_into

OPERATIONS = ("all_reduce", "reduce_scatter", "p2p")
#: Relative residual beyond which :func:`fit_link`'s soft-L1 loss stops growing quadratically.
ROBUST_SCALE = 0.1


def default_sizes(smallest: int = 4 * 1024, largest: int = 64 * 1024 * 1024, factor: int = 4) -> list[int]:
    """Message sizes in bytes from ``smallest`` to ``largest``, each ``factor`` times the last."""
    if not 0 < smallest <= largest or factor < 2:
        raise ValueError(f"need 0 < smallest <= largest and factor >= 2, got {smallest}, {largest}, {factor}")
    sizes = [smallest]
    while sizes[-1] * factor <= largest:
        sizes.append(sizes[-1] * factor)
    return sizes


def coefficients(operation: str, nbytes: float, world_size: int) -> tuple[float, float]:
    """``(a, b)`` with modelled time ``a * alpha + b / beta`` for one operation of ``nbytes`` per rank."""
    p = world_size
    if operation == "all_reduce":
        return 2.0 * (p - 1), 2.0 * (p - 1) / p * nbytes
    if operation == "reduce_scatter":
        return float(p - 1), (p - 1) / p * nbytes
    if operation == "p2p":
        return 1.0, float(nbytes)
    raise ValueError(f"operation must be one of {OPERATIONS}, got {operation!r}")


def _check_sizes(sizes, world_size: int) -> list[int]:
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"a sweep needs at least two message sizes to separate alpha from beta, got {sizes!r}; "
                         "use comm.link_fit.default_sizes()")
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 4 or n % (4 * world_size):
            raise ValueError(f"each size must be an integer number of bytes >= 4 and divisible by 4 * world_size "
                             f"= {4 * world_size} (fp32, one chunk per rank), got {n!r}")
    return [int(n) for n in sizes]


def time_once(operation: str, rank: int, x: torch.Tensor, out: torch.Tensor | None = None) -> float:
    """Seconds of one ``operation`` on this rank, from a barrier until its data is here.

    ``x``: this rank's tensor (changed in place); ``out``: the reduce-scatter's output chunk,
    needed only for ``"reduce_scatter"``. Every timing of a collective in the book goes through here.
    """
    dist.barrier()
    t0 = time.perf_counter()
    if operation == "all_reduce":
        dist.all_reduce(x)
    elif operation == "reduce_scatter":
        ring_reduce_scatter_into(out, x)
    elif rank == 0:  # a ping-pong between ranks 0 and 1 (others idle); one way = half of it
        dist.send(x, 1)
        dist.recv(x, 1)
    elif rank == 1:
        dist.recv(x, 0)
        dist.send(x, 0)
    stream_done(x.device)  # NCCL: the calls return once queued; the stream now waits for them
    elapsed = time.perf_counter() - t0
    return elapsed / 2 if operation == "p2p" else elapsed


def sweep_worker(rank: int, world_size: int, sizes: list[int], repeats: int = 5,
                 operations: tuple[str, ...] = OPERATIONS, warmup: int = 1) -> list[dict]:
    """Time each operation at each size ``repeats`` times on this rank; return one record per size.

    A record holds ``operation``, ``nbytes`` (per rank), ``times_s`` (this rank's repeats) and
    ``median_s``. Sizes run from small to large, the operations interleaved within each repeat.
    Rank 0's records are what :func:`fit_link` reads: every operation ends with data from every
    rank, so its times bound the others'.
    """
    sizes = _check_sizes(sizes, world_size)
    unknown = set(operations) - set(OPERATIONS)
    if unknown:
        raise ValueError(f"unknown operations {sorted(unknown)}; choose from {OPERATIONS}")
    if "p2p" in operations and world_size < 2:
        raise ValueError("p2p needs world_size >= 2")
    dev = device()
    records = []
    for n in sizes:
        x = torch.ones(n // 4, device=dev)
        out = torch.empty(n // 4 // world_size, device=dev)
        times = {op: [] for op in operations}
        for i in range(warmup + repeats):
            for op in operations:
                t = time_once(op, rank, x, out)
                if i >= warmup:
                    times[op].append(t)
        for op in operations:
            records.append({"operation": op, "nbytes": n, "times_s": times[op],
                            "median_s": float(np.median(times[op]))})
    return records


@dataclass(frozen=True)
class LinkFit:
    """The alpha-beta fit of one operation's sweep.

    ``link`` is the fitted :class:`Link`; ``nbytes``, ``measured_s`` and ``model_s`` the points
    and the fit at them; ``rel_residuals`` = measured / model - 1 at each size.
    """

    operation: str
    world_size: int
    link: Link
    nbytes: tuple[int, ...]
    measured_s: tuple[float, ...]
    model_s: tuple[float, ...]
    min_bytes: int = 0

    @property
    def fitted(self) -> tuple[bool, ...]:
        """Which points the fit used (``nbytes >= min_bytes``)."""
        return tuple(x >= self.min_bytes for x in self.nbytes)

    @property
    def rel_residuals(self) -> tuple[float, ...]:
        return tuple(m / f - 1.0 for m, f in zip(self.measured_s, self.model_s))

    @property
    def rms_rel_residual(self) -> float:
        """Root-mean-square relative residual over the fitted points."""
        used = [r for r, f in zip(self.rel_residuals, self.fitted) if f]
        return float(math.sqrt(np.mean(np.square(used))))

    @property
    def alpha_s(self) -> float:
        return self.link.latency_s

    @property
    def beta_gbit_s(self) -> float:
        return self.link.bandwidth_bytes_per_s / BYTES_PER_S_PER_GBPS

    def as_dict(self) -> dict:
        return {"operation": self.operation, "world_size": self.world_size, "alpha_s": self.alpha_s,
                "beta_bytes_per_s": self.link.bandwidth_bytes_per_s, "beta_gbit_s": self.beta_gbit_s,
                "nbytes": list(self.nbytes), "measured_s": list(self.measured_s), "model_s": list(self.model_s),
                "rel_residuals": list(self.rel_residuals), "rms_rel_residual": self.rms_rel_residual,
                "min_bytes": self.min_bytes}


def fit_link(operation: str, nbytes, times_s, world_size: int, min_bytes: int = 0) -> LinkFit:
    """Fit ``alpha`` and ``beta`` of :class:`Link` to one operation's (size, time) points.

    Minimises ``sum(rho(model(n) / t - 1))`` over ``alpha >= 0`` and ``1 / beta >= 0``, with
    ``rho`` the soft-L1 loss of scale :data:`ROBUST_SCALE` (quadratic for small residuals),
    started from the plain least-squares solution. Points smaller than ``min_bytes`` are kept in
    the result (``nbytes``, ``measured_s``, ``model_s``) but left out of the fit: over a
    :class:`~companion.comm.ShapedLink` a message that fits in the token bucket passes at line
    rate, which no alpha and beta describe (pass ``2 * link.burst_bytes``).
    Raises ``ValueError`` for fewer than two distinct sizes or non-positive times, and when the
    points leave 1/beta at zero (time does not grow with size: no bandwidth to fit).
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
        raise ValueError(f"world_size must be an integer >= 2, got {world_size!r}")
    n = np.asarray(nbytes, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if n.shape != t.shape or n.ndim != 1:
        raise ValueError(f"nbytes and times_s must be 1-D of one length, got {n.shape} and {t.shape}")
    if len(np.unique(n)) < 2:
        raise ValueError(f"a fit needs at least two distinct message sizes, got {sorted(set(n.tolist()))}; "
                         "sweep from 4 KiB to 64 MiB (comm.link_fit.default_sizes())")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"times_s must be finite and > 0, got {t.tolist()}")
    design = np.array([coefficients(operation, float(x), world_size) for x in n])
    used = n >= min_bytes
    if len(np.unique(n[used])) < 2:
        raise ValueError(f"min_bytes={min_bytes} leaves fewer than two message sizes of {n.tolist()}; "
                         "sweep larger messages")
    scaled = design[used] / t[used, None]
    start, _ = nnls(scaled, np.ones(len(scaled)))  # plain least squares on relative residuals
    if start[1] <= 0:
        raise ValueError(f"the {operation} times do not grow with message size ({t.tolist()} s at "
                         f"{n.tolist()} bytes): no bandwidth can be fitted; sweep larger messages")
    # then a soft-L1 loss: a point more than ROBUST_SCALE off (a descheduled repeat, a token
    # bucket's burst at the smallest sizes) pulls linearly, not quadratically
    unit = np.array([max(start[0], 1e-6), max(start[1], 1e-12)])
    robust = least_squares(lambda x: scaled @ (x * unit) - 1.0, np.where(start > 0, 1.0, 0.0) + 1e-9,
                           bounds=(0.0, np.inf), loss="soft_l1", f_scale=ROBUST_SCALE)
    alpha, inv_beta = robust.x * unit
    if inv_beta <= 0:
        raise ValueError(f"the {operation} times do not grow with message size ({t.tolist()} s at "
                         f"{n.tolist()} bytes): no bandwidth can be fitted; sweep larger messages")
    link = Link(float(alpha), float(1.0 / inv_beta))
    model = design @ np.array([alpha, inv_beta])
    return LinkFit(operation, world_size, link, tuple(int(x) for x in n), tuple(float(x) for x in t),
                   tuple(float(x) for x in model), int(min_bytes))


def fit_sweep(records: list[dict], world_size: int, min_bytes: int = 0) -> dict[str, LinkFit]:
    """One :class:`LinkFit` per operation from rank 0's :func:`sweep_worker` records (their medians)."""
    fits = {}
    for op in dict.fromkeys(r["operation"] for r in records):
        rows = [r for r in records if r["operation"] == op]
        fits[op] = fit_link(op, [r["nbytes"] for r in rows], [r["median_s"] for r in rows], world_size,
                            min_bytes)
    return fits
