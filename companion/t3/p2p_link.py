"""Point-to-point sends timed by a modelled link, with ``ModelledLink``'s clock and contention rule.

``companion.comm.ModelledLink.isend`` waits through ``Work.get_future()``, which gloo does not
implement for point-to-point work (``RuntimeError: Work::getFuture not implemented``), so the
ring of :mod:`companion.t3.schedules` sends through this small stand-in instead.  It keeps the
contract of :class:`companion.comm.ModelledLink` exactly:

- one link clock per rank: a send starts at ``max(issue time, link free)`` and is done
  ``link.p2p_time(nbytes)`` later; ``wait()`` sleeps until then and records a ``comm`` span;
- ``compute(name)``: a ``compute`` span stretched by ``contention`` times its overlap with the
  sends in flight.

It is thread-safe: the GEMM thread and the receiving threads may both send.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from companion.comm import Link, Timeline

__all__ = ["ModelledSend", "P2PLink"]


def _covered(start: float, end: float, intervals: list[tuple[float, float]]) -> float:
    """Length of [start, end] covered by the union of ``intervals``."""
    covered, cursor = 0.0, start
    for lo, hi in sorted(intervals):
        lo, hi = max(lo, cursor), min(hi, end)
        if hi > lo:
            covered += hi - lo
            cursor = hi
    return covered


class ModelledSend:
    """Handle of one send: ``start_s``/``done_s`` modelled, ``end_s`` after :meth:`wait`."""

    def __init__(self, link: "P2PLink", name: str, work, start_s: float, done_s: float) -> None:
        self._link, self._work, self.name = link, work, name
        self.start_s, self.done_s = start_s, done_s
        self.end_s: float | None = None

    def wait(self) -> None:
        """Block until the bytes have left and the modelled time has come; record the span."""
        if self.end_s is not None:
            return
        self._work.wait()
        real_done = time.perf_counter()
        delay = self.done_s - real_done
        if delay > 0:
            time.sleep(delay)
        self.end_s = max(self.done_s, real_done)
        if self._link.timeline is not None:
            self._link.timeline.record(self.name, "comm", self.start_s, self.end_s)


class P2PLink:
    """The sends of one rank over ``link``, recorded on ``timeline``, with ``contention`` c >= 0."""

    def __init__(self, link: Link, timeline: Timeline | None = None, contention: float = 0.0) -> None:
        if not isinstance(link, Link):
            raise ValueError(f"link must be a comm.Link, got {link!r}")
        if not contention >= 0:
            raise ValueError(f"contention must be >= 0, got {contention!r}")
        self.link, self.timeline, self.contention = link, timeline, float(contention)
        self.link_free_at = 0.0
        self.bytes_sent = 0
        self._intervals: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        #: seconds each compute block took before its contention stretch, in order
        self.unstretched_s: list[float] = []

    def isend(self, tensor: torch.Tensor, dst: int, name: str = "isend", tag: int = 0) -> ModelledSend:
        """Send ``tensor`` to rank ``dst`` now; it completes at the link clock's modelled time."""
        nbytes = tensor.numel() * tensor.element_size()
        work = dist.isend(tensor, dst, tag=tag)
        with self._lock:
            start = max(time.perf_counter(), self.link_free_at)
            done = start + self.link.p2p_time(nbytes)
            self.link_free_at = done
            self._intervals.append((start, done))
            self.bytes_sent += nbytes
        return ModelledSend(self, name, work, start, done)

    @contextmanager
    def compute(self, name: str = "compute") -> Iterator[None]:
        """A compute span lasting ``t + c * overlap`` with the sends in flight."""
        start = time.perf_counter()
        try:
            yield
        finally:
            end = time.perf_counter()
            self.unstretched_s.append(end - start)
            with self._lock:
                busy = [iv for iv in self._intervals if iv[1] > start]
            overlap = _covered(start, end, busy)
            if self.contention > 0 and overlap > 0:
                time.sleep(self.contention * overlap)
                end = time.perf_counter()
            if self.timeline is not None:
                self.timeline.record(name, "compute", start, end)
