"""DRAM bytes one rank moves for a GEMM, its ring reduce-scatter and the all-gather after it.

Two ways to do the reduce-scatter's additions (T3 §4, compute-enhanced memory):

- **on the compute units** (the baseline): each incoming partial chunk is written to DRAM by
  the link, a reduction kernel reads it and the local chunk and writes the sum, and the DMA
  engine reads the sum again to send it on;
- **near memory** (T3): the incoming partial is an *update* write that DRAM adds into the
  local chunk in place, so the bus carries it once, and the DMA reads the sum once to send it.

The count is the compulsory traffic (every tensor touched once per use, no cache re-reads).
It shows where T3's saving comes from; the paper counts traffic in a cycle simulator with
caches, so its exact accounting differs.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrafficCount", "count_dram_traffic"]


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


def count_dram_traffic(
    m: int, k: int, n: int, world_size: int, *, bytes_per_element: int = 2, near_memory_reduce: bool = False
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

    Returns
    -------
    TrafficCount
        Bytes per phase.
    """
    for name, value in (("m", m), ("k", k), ("n", n), ("world_size", world_size), ("bytes_per_element", bytes_per_element)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    e, p = bytes_per_element, world_size
    chunk = e * m * n / p
    steps = p - 1
    if near_memory_reduce:
        # one update write per received chunk; one DMA read per sent chunk (p - 1 sends)
        rs_read, rs_write = steps * chunk, steps * chunk
    else:
        # sends read the chunk (p - 1 sends); each receive: link writes it, the kernel reads it
        # and the local chunk and writes the sum
        rs_read, rs_write = steps * chunk + steps * 2 * chunk, steps * 2 * chunk
    return TrafficCount(
        gemm_read=e * (m * k + k * n),
        gemm_write=e * m * n,
        rs_read=rs_read,
        rs_write=rs_write,
        ag_read=steps * chunk,  # each of p - 1 sends reads a chunk
        ag_write=steps * chunk,  # each of p - 1 receives writes one
    )
