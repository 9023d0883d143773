"""Tensor-parallel ranks as threads of one process, with an all-reduce that sums at ``wait()``.

A quick, process-free way to check the tensor-parallel forward (the chapter's real runs use
:func:`companion.comm.launch`). The sum happens at ``wait()``, not at launch, so a forward that read
an all-reduced tensor before waiting on it would produce wrong numbers: tests catch a misplaced wait.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext

import torch


class _Group:
    def __init__(self, world_size: int):
        self.barrier = threading.Barrier(world_size, timeout=30)
        self.slots: list = [None] * world_size


class _DeferredWork:
    def __init__(self, group: _Group, rank: int, tensor: torch.Tensor):
        self.group, self.rank, self.tensor = group, rank, tensor

    def wait(self) -> bool:
        g = self.group
        g.slots[self.rank] = self.tensor.clone()
        g.barrier.wait()
        total = torch.stack(g.slots).sum(0)
        g.barrier.wait()  # nobody overwrites a slot before every rank has read it
        self.tensor.copy_(total)
        return True


class ThreadComm:
    """Rank ``rank``'s view of a thread group: the two methods :class:`Decoder` calls."""

    def __init__(self, group: _Group, rank: int):
        self.group, self.rank = group, rank
        self.n_all_reduces = 0

    def all_reduce(self, tensor, async_op=False, name="all_reduce"):
        self.n_all_reduces += 1
        work = _DeferredWork(self.group, self.rank, tensor)
        if async_op:
            return work
        work.wait()
        return None

    def compute(self, name):
        return nullcontext()


def run_threads(fn, world_size: int) -> list:
    """``[fn(rank, ThreadComm) for rank in range(world_size)]``, the ranks running concurrently."""
    group = _Group(world_size)
    results: list = [None] * world_size
    errors: list = []

    def target(rank: int) -> None:
        try:
            with torch.no_grad():
                results[rank] = fn(rank, ThreadComm(group, rank))
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=target, args=(r,)) for r in range(world_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
