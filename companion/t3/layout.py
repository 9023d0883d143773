"""Which rows of the GEMM output each schedule computes when, and which rank sends them where.

A row-parallel GEMM on rank ``r`` of ``p`` produces a partial output ``C_r`` of shape
``(M, N)``; the reduce-scatter leaves rows ``[b M/p, (b+1) M/p)`` of ``sum_r C_r`` (block ``b``)
on rank ``b``.  The ring passes partial sums to the right: at ring step ``s`` rank ``r`` sends
block ``(r - 1 - s) mod p``, and after ``p - 1`` steps it holds its own block in full.

Every schedule cuts each block into ``m`` row chunks and names a chunk by ``(s, j)``: the ring
step ``s`` at which this rank handles it (``s = p - 1`` is the rank's own block) and its index
``j`` inside the block.  Schedules differ only in how the GEMM is grouped and ordered:

- ``"sequential"``: one GEMM over all rows, then the ring (``m = 1``);
- ``"coarse"``: ``m`` chunks, chunk ``j`` holds row chunk ``j`` of *every* block and is
  reduce-scattered by its own ring as soon as it is computed (Domino / TransformerEngine
  "pipeline" style);
- ``"fine"``: the T3 order, one row chunk at a time, ``(s, j)`` in ring-step order, so each
  rank first computes what it must send first (a per-rank staggered order).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SCHEDULES", "Item", "ScheduleLayout", "make_layout", "block_of", "item_rows", "check_rows"]

#: The three schedules of the chapter, in the order the book shows them.
SCHEDULES = ("sequential", "coarse", "fine")

#: A row chunk of the output named by (ring step s, index j inside its block).
Item = tuple[int, int]


@dataclass(frozen=True)
class ScheduleLayout:
    """The GEMM groups of one schedule.

    Attributes
    ----------
    schedule : str
        One of :data:`SCHEDULES`.
    world_size : int
        ``p``, the tensor-parallel degree.
    chunks_per_block : int
        ``m``, row chunks per block of the reduce-scatter.
    groups : tuple of tuple of Item
        The GEMM is run group after group; each group computes these row chunks.
    """

    schedule: str
    world_size: int
    chunks_per_block: int
    groups: tuple[tuple[Item, ...], ...]

    @property
    def items(self) -> tuple[Item, ...]:
        """Every row chunk, in the order the GEMM produces them."""
        return tuple(item for group in self.groups for item in group)

    @property
    def sent_items(self) -> tuple[Item, ...]:
        """The row chunks this rank sends (all but its own block's)."""
        return tuple(item for item in self.items if item[0] < self.world_size - 1)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def make_layout(schedule: str, world_size: int, chunks: int = 1) -> ScheduleLayout:
    """The GEMM groups of ``schedule`` for a ``world_size``-way ring.

    ``chunks`` is ``m``, the row chunks per block: ignored (taken as 1) by ``"sequential"``;
    the number of pipelined chunks of ``"coarse"``; the chunks per ring step of ``"fine"``.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    p = _positive_int("world_size", world_size)
    m = 1 if schedule == "sequential" else _positive_int("chunks", chunks)
    if schedule == "sequential":
        groups = (tuple((s, 0) for s in range(p)),)
    elif schedule == "coarse":
        groups = tuple(tuple((s, j) for s in range(p)) for j in range(m))
    else:
        groups = tuple(((s, j),) for s in range(p) for j in range(m))
    return ScheduleLayout(schedule, p, m, groups)


def block_of(item: Item, rank: int, world_size: int) -> int:
    """The reduce-scatter block that rank ``rank`` handles at ring step ``item[0]``."""
    return (rank - 1 - item[0]) % world_size


def item_rows(item: Item, rank: int, n_rows: int, layout: ScheduleLayout) -> slice:
    """The rows of the ``(n_rows, N)`` output that chunk ``item`` covers on rank ``rank``.

    Raises ``ValueError`` when ``n_rows`` is not divisible by ``p`` (the world size does not
    divide the output) or by ``p * m`` (the chunk count does not divide the rows).
    """
    p, m = layout.world_size, layout.chunks_per_block
    check_rows(n_rows, p, m)
    block_rows = n_rows // p
    chunk_rows = block_rows // m
    start = block_of(item, rank, p) * block_rows + item[1] * chunk_rows
    return slice(start, start + chunk_rows)


def check_rows(n_rows: int, world_size: int, chunks_per_block: int) -> None:
    """Raise ``ValueError`` unless ``n_rows`` splits into ``world_size`` blocks of ``chunks_per_block`` chunks."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 1:
        raise ValueError(f"the output needs an integer number of rows >= 1, got {n_rows!r}")
    if n_rows % world_size:
        raise ValueError(
            f"world size {world_size} does not divide the output's {n_rows} rows; "
            f"the reduce-scatter needs M divisible by p (use M = {world_size * max(1, n_rows // world_size)})"
        )
    if (n_rows // world_size) % chunks_per_block:
        raise ValueError(
            f"{chunks_per_block} chunks per block do not divide the {n_rows // world_size} rows of a block "
            f"(M={n_rows}, p={world_size}); pick chunks dividing M/p"
        )
