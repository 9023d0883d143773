"""The software stand-in for T3's tracker: a write counter per output chunk that fires its send.

T3's hardware counts the stores that land in each chunk of the GEMM's output (the GEMM's own
writes and the partial sum arriving from the ring neighbour) and, when a chunk's count reaches
its threshold, triggers the DMA command that forwards it.  Here the "stores" are calls to
:meth:`ChunkTracker.record`, made by the GEMM thread when it finishes a chunk and by a
receiving thread when a partial arrives; whichever call fills the counter runs the trigger.
"""

from __future__ import annotations

import threading
from typing import Callable, Hashable, Mapping

__all__ = ["ChunkTracker"]


class ChunkTracker:
    """Per-chunk write counters that call ``trigger(chunk)`` once, when a counter is full.

    Parameters
    ----------
    expected : mapping from chunk to int
        How many writes complete each chunk (>= 1).
    trigger : callable
        Called with the chunk, on the thread of the write that completed it, under the
        tracker's lock (so triggers never run concurrently).

    Examples
    --------
    >>> fired = []
    >>> tracker = ChunkTracker({"a": 2, "b": 1}, fired.append)
    >>> tracker.record("a"); tracker.record("b"); tracker.record("a")
    >>> fired
    ['b', 'a']
    """

    def __init__(self, expected: Mapping[Hashable, int], trigger: Callable[[Hashable], None]) -> None:
        for chunk, count in expected.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"chunk {chunk!r} must expect an integer >= 1 writes, got {count!r}")
        self.expected = dict(expected)
        self.trigger = trigger
        self.counts = {chunk: 0 for chunk in self.expected}
        self.fired: list[Hashable] = []
        self._lock = threading.Lock()

    def record(self, chunk: Hashable) -> None:
        """Count one write to ``chunk``; fire its trigger if that completes it."""
        with self._lock:
            if chunk not in self.counts:
                raise ValueError(f"unknown chunk {chunk!r}; the tracker knows {sorted(self.counts, key=str)}")
            if self.counts[chunk] >= self.expected[chunk]:
                raise ValueError(f"chunk {chunk!r} already received its {self.expected[chunk]} writes")
            self.counts[chunk] += 1
            if self.counts[chunk] == self.expected[chunk]:
                self.fired.append(chunk)
                self.trigger(chunk)

    @property
    def complete(self) -> bool:
        """True when every chunk has fired."""
        return len(self.fired) == len(self.expected)
