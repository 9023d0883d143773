"""Closed-form times of a GEMM followed by its ring reduce-scatter (T3 §2-3, our derivation).

Notation (one rank of a p-way tensor-parallel group):

- ``G``: the whole producer GEMM, in isolation, seconds;
- ``C_RS``: the ring reduce-scatter of its output, ``(p-1) (alpha + S / (p beta))``;
- ``g = G / p`` and ``x = C_RS / (p-1)``: one chunk of GEMM and one ring step;
- ``g' = (1 + gamma_g) g`` and ``x' = (1 + gamma_c) x``: the same under the T3 paper's
  measured slowdowns, a fixed factor on every chunk (the paper measures a GEMM and a
  collective sharing compute units for the GEMM's whole duration);
- ``c``: the book's one contention definition (:mod:`companion.comm.events`,
  :class:`~companion.comm.ModelledLink`): a chunk is stretched by ``c`` times its *actual*
  overlap with transfers in flight. Chunk 0 overlaps nothing; chunk ``k >= 1`` overlaps
  ``min(g', x')`` of the send before it (the link is busy throughout when ``x' > g'``), so it
  lasts ``g'' = g' + c min(g', x')``;
- ``r``: the reduction of the last received partial, left exposed at the end.

The sequential schedule takes ``G + C_RS``.  The pipelined (T3) schedule computes the chunk
that must leave first, sends it the moment it is done, and computes the next chunk while the
first is on the wire: ``g' + (p-1) max(g'', x') + r`` (``g'' = g'`` when ``c = 0``). The two
contention quantities differ: at ``p = 8``, ``C_RS = G/2`` a slowdown ``gamma_g = 1`` gives
0.75x, a stretch ``c = 1`` (whose chunk 0 runs alone) gives 1.00x. Both forms equal
:func:`~companion.t3.schedule_model.simulate_schedule` with the chunk times scaled by
``1 + gamma_g`` and contention ``c`` (tested).
"""

from __future__ import annotations

__all__ = [
    "sequential_time",
    "pipelined_time",
    "ideal_overlap_time",
    "speedup_ceiling",
    "chunk_times",
]


def _check_nonnegative(**values: float) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be >= 0 seconds, got {value}")


def _check_world_size(world_size: int) -> None:
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")


def sequential_time(gemm_s: float, reduce_scatter_s: float) -> float:
    """``T_seq = G + C_RS``: the GEMM, then its reduce-scatter, nothing overlapped."""
    _check_nonnegative(gemm_s=gemm_s, reduce_scatter_s=reduce_scatter_s)
    return gemm_s + reduce_scatter_s


def chunk_times(gemm_s: float, reduce_scatter_s: float, world_size: int) -> tuple[float, float]:
    """Split ``G`` and ``C_RS`` into the per-chunk ``(g, x)`` of a p-chunk ring pipeline."""
    _check_nonnegative(gemm_s=gemm_s, reduce_scatter_s=reduce_scatter_s)
    _check_world_size(world_size)
    if world_size == 1:
        return gemm_s, 0.0
    return gemm_s / world_size, reduce_scatter_s / (world_size - 1)


def pipelined_time(
    chunk_gemm_s: float,
    step_s: float,
    world_size: int,
    *,
    final_reduce_s: float = 0.0,
    gemm_slowdown: float = 0.0,
    comm_slowdown: float = 0.0,
    contention: float = 0.0,
) -> float:
    """``g' + (p-1) max(g' + c min(g', x'), x') + r``: the ring-ordered fine-grained schedule.

    Parameters
    ----------
    chunk_gemm_s : float
        ``g``, seconds of GEMM per chunk (one chunk per ring step).
    step_s : float
        ``x``, seconds one ring step keeps the link busy.
    world_size : int
        ``p``, the tensor-parallel degree.
    final_reduce_s : float
        ``r``, the exposed reduction of the last partial (0 with near-memory reduction).
    gemm_slowdown, comm_slowdown : float
        ``gamma_g`` and ``gamma_c`` >= 0, the T3 paper's slowdowns: every chunk of GEMM and every
        ring step is ``1 + gamma`` times longer, whatever it overlaps.
    contention : float
        ``c >= 0``, the book's contention: an overlapped chunk is stretched by ``c`` times its
        overlap with the transfer in flight (module docstring).
    """
    _check_nonnegative(
        chunk_gemm_s=chunk_gemm_s,
        step_s=step_s,
        final_reduce_s=final_reduce_s,
        gemm_slowdown=gemm_slowdown,
        comm_slowdown=comm_slowdown,
        contention=contention,
    )
    _check_world_size(world_size)
    g = (1.0 + gemm_slowdown) * chunk_gemm_s
    x = (1.0 + comm_slowdown) * step_s
    overlapped = g + contention * min(g, x)  # chunks 1..p-1 each run beside one send
    return g + (world_size - 1) * max(overlapped, x) + final_reduce_s


def ideal_overlap_time(gemm_s: float, reduce_scatter_s: float, world_size: int) -> float:
    """``max(G, C_RS + G/p)``: the pipeline with no contention and no exposed reduction.

    It is :func:`pipelined_time` at zero contention with ``g = G/p`` and ``x = C_RS/(p-1)``:
    either the GEMM never waits (``x <= g``, time ``G``) or the link never idles after the
    first chunk (``x > g``, time ``G/p + C_RS``).
    """
    g, x = chunk_times(gemm_s, reduce_scatter_s, world_size)
    return pipelined_time(g, x, world_size)


def speedup_ceiling(world_size: int) -> float:
    """The largest ``T_seq / T_pipe`` a p-chunk pipeline can reach: ``2 - 1/p`` < 2.

    Reached when one ring step takes as long as one chunk of GEMM (``x = g``, i.e.
    ``C_RS = G (p-1)/p``); it tends to 2 as p grows and is 1 for p = 1.
    """
    _check_world_size(world_size)
    return 2.0 - 1.0 / world_size
