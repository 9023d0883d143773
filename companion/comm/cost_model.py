"""The alpha-beta cost model of a network link and of ring collectives over it.

A message of ``n`` bytes over a link of latency ``alpha`` (seconds) and bandwidth ``beta``
(bytes per second) takes ``alpha + n / beta`` seconds. Ring collectives over ``p`` ranks split
the message into ``p`` chunks and take ``p - 1`` (reduce-scatter, all-gather) or ``2 (p - 1)``
(all-reduce) steps, each moving one chunk of ``n / p`` bytes over every link at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Bytes per second in one Gbit/s.
BYTES_PER_S_PER_GBPS = 1.25e8


def _check_nbytes(nbytes: float) -> float:
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, float)) or not math.isfinite(nbytes):
        raise ValueError(f"nbytes must be a finite number of bytes, got {nbytes!r}")
    if nbytes < 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes}")
    return float(nbytes)


def _check_world_size(world_size: int) -> int:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    return world_size


@dataclass(frozen=True)
class Link:
    """A network link in the alpha-beta model.

    Parameters
    ----------
    latency_s : float
        ``alpha``, the fixed cost of one message in seconds (>= 0).
    bandwidth_bytes_per_s : float
        ``beta``, bytes per second (> 0).

    All ``*_time`` methods take sizes in bytes and return seconds.
    """

    latency_s: float
    bandwidth_bytes_per_s: float

    def __post_init__(self) -> None:
        lat, bw = self.latency_s, self.bandwidth_bytes_per_s
        if isinstance(lat, bool) or not isinstance(lat, (int, float)) or not math.isfinite(lat) or lat < 0:
            raise ValueError(f"latency_s must be a finite number >= 0, got {lat!r}")
        if isinstance(bw, bool) or not isinstance(bw, (int, float)) or not math.isfinite(bw) or bw <= 0:
            raise ValueError(f"bandwidth_bytes_per_s must be a finite number > 0, got {bw!r}")
        object.__setattr__(self, "latency_s", float(lat))
        object.__setattr__(self, "bandwidth_bytes_per_s", float(bw))

    @classmethod
    def from_gbps(cls, latency_s: float, gbit_per_s: float) -> "Link":
        """A link given its bandwidth in Gbit/s (1 Gbit/s = 1.25e8 bytes/s)."""
        if isinstance(gbit_per_s, bool) or not isinstance(gbit_per_s, (int, float)) or not gbit_per_s > 0:
            raise ValueError(f"gbit_per_s must be a number > 0, got {gbit_per_s!r}")
        return cls(latency_s, gbit_per_s * BYTES_PER_S_PER_GBPS)

    @property
    def gbit_per_s(self) -> float:
        """The bandwidth in Gbit/s."""
        return self.bandwidth_bytes_per_s / BYTES_PER_S_PER_GBPS

    def p2p_time(self, nbytes: float) -> float:
        """One message of ``nbytes`` from one rank to another: ``alpha + n / beta``."""
        n = _check_nbytes(nbytes)
        return self.latency_s + n / self.bandwidth_bytes_per_s

    def _ring_steps(self, nbytes: float, world_size: int, steps_per_rank: int) -> float:
        n, p = _check_nbytes(nbytes), _check_world_size(world_size)
        if p == 1:
            return 0.0
        return steps_per_rank * (p - 1) * (self.latency_s + n / (p * self.bandwidth_bytes_per_s))

    def allreduce_time(self, nbytes: float, world_size: int) -> float:
        """Ring all-reduce of ``nbytes`` per rank: ``2 (p - 1) (alpha + n / (p beta))``; 0 when p == 1."""
        return self._ring_steps(nbytes, world_size, 2)

    def reduce_scatter_time(self, nbytes: float, world_size: int) -> float:
        """Ring reduce-scatter, ``nbytes`` = the full input per rank: ``(p - 1) (alpha + n / (p beta))``."""
        return self._ring_steps(nbytes, world_size, 1)

    def allgather_time(self, nbytes: float, world_size: int) -> float:
        """Ring all-gather, ``nbytes`` = the full output per rank: ``(p - 1) (alpha + n / (p beta))``."""
        return self._ring_steps(nbytes, world_size, 1)

    def broadcast_time(self, nbytes: float, world_size: int) -> float:
        """Binomial-tree broadcast of ``nbytes``: ``ceil(log2 p) (alpha + n / beta)``; 0 when p == 1.

        In round ``k`` every rank that already holds the message sends it whole to one rank that
        does not, so the number of holders doubles each round.
        """
        n, p = _check_nbytes(nbytes), _check_world_size(world_size)
        if p == 1:
            return 0.0
        return math.ceil(math.log2(p)) * (self.latency_s + n / self.bandwidth_bytes_per_s)


def broadcast_sends(relative_rank: int, world_size: int) -> int:
    """How many whole-message sends ``relative_rank`` (rank minus source, mod p) makes in a binomial broadcast."""
    p = _check_world_size(world_size)
    if not 0 <= relative_rank < p:
        raise ValueError(f"relative_rank must be in [0, {p}), got {relative_rank}")
    sends, k = 0, 0
    while (1 << k) < p:
        if relative_rank < (1 << k) and relative_rank + (1 << k) < p:
            sends += 1
        k += 1
    return sends


def overlap_bounds(compute_s: float, comm_s: float) -> tuple[float, float]:
    """Bounds on the wall time of ``compute_s`` of compute and ``comm_s`` of communication.

    Returns ``(max(compute, comm), compute + comm)``: perfect overlap and no overlap.
    """
    for name, v in (("compute_s", compute_s), ("comm_s", comm_s)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    return max(compute_s, comm_s), compute_s + comm_s


def critical_bandwidth(nbytes: float, world_size: int, compute_s: float, latency_s: float = 0.0) -> float:
    """The smallest bandwidth (bytes/s) at which a ring all-reduce of ``nbytes`` hides behind ``compute_s``.

    Solves ``2 (p - 1) (alpha + n / (p beta)) = compute_s`` for ``beta``; ``inf`` when the
    latency alone exceeds the compute time, 0 when ``p == 1``.
    """
    n, p = _check_nbytes(nbytes), _check_world_size(world_size)
    if not compute_s > 0:
        raise ValueError(f"compute_s must be > 0, got {compute_s!r}")
    if p == 1 or n == 0:
        return 0.0
    budget = compute_s / (2 * (p - 1)) - latency_s
    if budget <= 0:
        return math.inf
    return n / (p * budget)


def compute_utilization(compute_s: float, comm_s: float, hideable_s: float) -> float:
    """Fraction of wall time spent computing when ``hideable_s`` of the communication can overlap compute.

    ``compute / (compute + max(0, comm - hideable))``; ``hideable_s`` is at most ``compute_s``.
    """
    for name, v in (("compute_s", compute_s), ("comm_s", comm_s), ("hideable_s", hideable_s)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if compute_s <= 0:
        raise ValueError("compute_s must be > 0")
    if hideable_s > compute_s:
        raise ValueError(f"hideable_s ({hideable_s}) cannot exceed compute_s ({compute_s})")
    return compute_s / (compute_s + max(0.0, comm_s - hideable_s))


#: The share of a data-parallel training step behind which its gradient all-reduce can hide: the
#: backward pass, 2/3 of the step by the 6N rule (2N FLOPs per token forward, 4N backward). A
#: bucketed all-reduce (DDP's) reduces a layer's gradient as soon as that layer's backward is
#: done, so it runs beside the rest of the backward; the next forward needs the reduced
#: gradients (through the optimiser step), so nothing hides behind it. The book's one answer
#: to "how much of data-parallel's communication is hidden", used by ``comm``, ``diloco`` and
#: ``co2``. (Per layer, the last bucket to leave is the first the next forward needs, so a
#: tail stays exposed: :mod:`companion.diloco.layer_sim` models it.)
DATA_PARALLEL_HIDDEN_FRACTION = 2.0 / 3.0


def data_parallel_utilization(step_s: float, comm_s: float, *, bucketed: bool = True) -> float:
    """Compute utilisation of data-parallel training: ``T / (T + max(0, c - h T))``.

    ``step_s`` is ``T``, the compute of one step; ``comm_s`` is ``c``, its gradient
    all-reduce, which for a ring over ``p`` workers is :meth:`Link.allreduce_time`,
    ``2 (p - 1) (alpha + n / (p beta))``: latency enters once per ring step, ``2 (p - 1)``
    times, not once. ``h`` is :data:`DATA_PARALLEL_HIDDEN_FRACTION` for a bucketed all-reduce
    (``bucketed=True``, the default and what DDP does) and 0 for one blocking all-reduce after
    the backward pass (``bucketed=False``), which hides nothing.
    """
    hidden = DATA_PARALLEL_HIDDEN_FRACTION if bucketed else 0.0
    if not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"step_s must be a finite number > 0, got {step_s!r}")
    return compute_utilization(step_s, comm_s, hidden * step_s)


def bandwidth_for_utilization(wire_bytes: float, compute_s: float, hideable_s: float, utilization: float) -> float:
    """Bytes/s needed so that moving ``wire_bytes`` per step keeps :func:`compute_utilization` at ``utilization``.

    Inverts ``compute / (compute + wire_bytes / beta - hideable) = utilization`` (latency ignored):
    ``beta = wire_bytes / (hideable + compute (1 / utilization - 1))``.
    """
    n = _check_nbytes(wire_bytes)
    if not 0 < utilization <= 1:
        raise ValueError(f"utilization must be in (0, 1], got {utilization!r}")
    if not compute_s > 0 or not 0 <= hideable_s <= compute_s:
        raise ValueError(f"need compute_s > 0 and 0 <= hideable_s <= compute_s, got {compute_s!r}, {hideable_s!r}")
    budget = hideable_s + compute_s * (1.0 / utilization - 1.0)
    if budget <= 0:
        return math.inf
    return n / budget
