"""DRAM bytes one rank moves for a GEMM, its ring reduce-scatter and the all-gather after it.

Three ways to do the reduce-scatter's additions, counted in chunk accesses (one chunk is
``S / p`` bytes of the rank's ``S``-byte GEMM output) over the ring's ``p - 1`` steps:

- **kernel** (the five-access baseline): each incoming partial is written to DRAM by the
  link; a reduction kernel reads it and the local chunk and writes the sum; the DMA engine
  reads the sum again to send it on. Five accesses per step, ``5 (p - 1)`` in all;
- **fused** (the three-access baseline): a reduce-and-forward kernel, as NCCL's and RCCL's
  ring kernels are: the link writes the incoming partial, the kernel reads it and the local
  chunk and sends the sum straight to the next rank, with no DRAM write and no second read.
  Three accesses per step, plus the first send's read of the local chunk and the final
  write of the result: ``3 (p - 1) + 2``;
- **near memory** (T3, §4 of the paper): the incoming partial is an *update* write that DRAM
  adds into the local chunk in place, so the bus carries it once, and the DMA reads the sum
  once to send it: ``2 (p - 1)``.

The count is the compulsory traffic (every tensor touched once per use, no cache re-reads,
no write-allocate). It shows where T3's saving comes from; the paper counts traffic in a
cycle simulator with caches, so its exact accounting differs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "REDUCTIONS",
    "TrafficCount",
    "rs_chunk_accesses",
    "count_dram_traffic",
    "with_gemm_reads",
    "category_changes",
]

#: The reduce-scatter variants :func:`rs_chunk_accesses` counts.
REDUCTIONS = ("kernel", "fused", "near_memory")


@dataclass(frozen=True)
class TrafficCount:
    """Bytes read from and written to DRAM by one rank, per phase of the sublayer."""

    gemm_read: float
    gemm_write: float
    rs_read: float
    rs_write: float
    ag_read: float
    ag_write: float

    @property
    def total(self) -> float:
        """All bytes moved, reads plus writes."""
        return self.gemm_read + self.gemm_write + self.rs_read + self.rs_write + self.ag_read + self.ag_write

    @property
    def overlapped(self) -> float:
        """Bytes of the phases T3 runs at once (GEMM and reduce-scatter), which share DRAM."""
        return self.gemm_read + self.gemm_write + self.rs_read + self.rs_write


def rs_chunk_accesses(world_size: int, reduction: str = "kernel") -> tuple[int, int]:
    """``(reads, writes)`` of one rank's ring reduce-scatter, in chunks of ``S / p`` bytes.

    Parameters
    ----------
    world_size : int
        ``p``, ranks in the ring; the reduce-scatter takes ``p - 1`` steps.
    reduction : str
        ``"kernel"`` (five accesses a step), ``"fused"`` (three a step, plus two) or
        ``"near_memory"`` (two a step); see the module docstring.

    Returns
    -------
    tuple of int
        Chunk reads and chunk writes; both 0 for ``p = 1``.
    """
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    steps = world_size - 1
    if steps == 0:
        return 0, 0
    if reduction == "kernel":
        # per step: the send reads a chunk; the link writes the incoming one, the kernel reads
        # it and the local chunk and writes the sum
        return 3 * steps, 2 * steps
    if reduction == "fused":
        # per step: the link writes the incoming chunk, the kernel reads it and the local one
        # and forwards the sum; once: the first send reads the local chunk, the last sum is written
        return 2 * steps + 1, steps + 1
    # per step: one update write received, one DMA read sent
    return steps, steps


def count_dram_traffic(
    m: int,
    k: int,
    n: int,
    world_size: int,
    *,
    bytes_per_element: int = 2,
    near_memory_reduce: bool = False,
    fused_forward: bool = False,
) -> TrafficCount:
    """Compulsory DRAM traffic of ``(m x k) @ (k x n)``, ring reduce-scatter and ring all-gather.

    Parameters
    ----------
    m, k, n : int
        GEMM dimensions on one rank; the output ``(m, n)`` is the reduce-scatter's input.
    world_size : int
        ``p``; the ring moves ``p - 1`` chunks of ``S / p`` bytes, ``S = m n`` elements.
    bytes_per_element : int
        Element size in bytes.
    near_memory_reduce : bool
        Add incoming partials in memory (T3) rather than in a kernel.
    fused_forward : bool
        The baseline's kernel reduces and forwards in one pass (three accesses a ring step)
        rather than writing the sum and reading it again to send (five). Not with
        ``near_memory_reduce``.

    Returns
    -------
    TrafficCount
        Bytes per phase.
    """
    for name, value in (("m", m), ("k", k), ("n", n), ("world_size", world_size), ("bytes_per_element", bytes_per_element)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if near_memory_reduce and fused_forward:
        raise ValueError("near_memory_reduce and fused_forward are two different reduce-scatters; pick one")
    reduction = "near_memory" if near_memory_reduce else "fused" if fused_forward else "kernel"
    e, p = bytes_per_element, world_size
    chunk = e * m * n / p
    reads, writes = rs_chunk_accesses(p, reduction)
    steps = p - 1
    return TrafficCount(
        gemm_read=e * (m * k + k * n),
        gemm_write=e * m * n,
        rs_read=reads * chunk,
        rs_write=writes * chunk,
        ag_read=steps * chunk,  # each of p - 1 sends reads a chunk
        ag_write=steps * chunk,  # each of p - 1 receives writes one
    )


def with_gemm_reads(count: TrafficCount, factor: float) -> TrafficCount:
    """``count`` with its GEMM reads multiplied by ``factor`` (> 0), everything else kept.

    For asking what a baseline whose GEMM re-reads its inputs through the caches (as a
    simulator with caches sees it) would do to a saving: ``factor`` is the baseline's GEMM
    read bytes over the compulsory ones.
    """
    if factor <= 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return TrafficCount(
        gemm_read=factor * count.gemm_read,
        gemm_write=count.gemm_write,
        rs_read=count.rs_read,
        rs_write=count.rs_write,
        ag_read=count.ag_read,
        ag_write=count.ag_write,
    )


def category_changes(baseline: TrafficCount, t3: TrafficCount) -> dict[str, float]:
    """T3's traffic against a baseline's, in the categories of the paper's §6.2.

    Returns
    -------
    dict
        ``rs_read_ratio`` and ``gemm_read_ratio``: baseline bytes / T3 bytes ("x lower");
        ``gemm_rs_write_change``: T3's GEMM + reduce-scatter writes over the baseline's,
        minus 1 (negative: fewer); ``ag_change``: the same for all-gather reads and writes;
        ``saving``: ``1 - total_t3 / total_baseline``, the fraction of all bytes saved.
    """

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {
        "rs_read_ratio": ratio(baseline.rs_read, t3.rs_read),
        "gemm_read_ratio": ratio(baseline.gemm_read, t3.gemm_read),
        "gemm_rs_write_change": ratio(t3.gemm_write + t3.rs_write, baseline.gemm_write + baseline.rs_write) - 1.0,
        "ag_change": ratio(t3.ag_read + t3.ag_write, baseline.ag_read + baseline.ag_write) - 1.0,
        "saving": 1.0 - t3.total / baseline.total,
    }
