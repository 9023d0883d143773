"""Host times of device work: when a GPU kernel or an NCCL collective really finished.

A CPU runs an operation before the call returns, so ``time.perf_counter()`` after the call
times it. A GPU runs asynchronously: the call returns once the kernel is *queued*. Under NCCL
a collective runs on NCCL's own stream, and the future of its work completes as soon as the
collective is queued, so a completion time taken from a future callback means nothing there.
Two rules follow, and this module implements them:

- compute: record a CUDA event on the stream the compute was queued on and wait for that event
  (:func:`stream_done`), never ``torch.cuda.synchronize()``, which also waits for NCCL's
  stream and so makes an "overlapped" compute span swallow the all-reduce beside it;
- communication: make a stream of our own wait on the collective (``work.wait()`` under that
  stream), record an event there and wait for it (:class:`CollectiveClock`): that returns
  when the collective is done, not when the caller's queued compute is.

On the CPU (gloo) both are no-ops around ``perf_counter``, so CPU timings are unchanged.
"""

from __future__ import annotations

import time

import torch


def stream_done(device: torch.device) -> None:
    """Block until the work queued so far on ``device``'s current stream is done (CPU: return).

    Only that stream is waited for: collectives in flight on NCCL's streams keep running, unless
    the current stream was told to wait for them (``work.wait()``).
    """
    if device.type != "cuda":
        return
    done = torch.cuda.Event()
    done.record(torch.cuda.current_stream(device))
    done.synchronize()


class CollectiveClock:
    """Host completion times (``perf_counter`` seconds) of collectives on ``device``.

    Under NCCL it owns one side stream on which nothing but waits is queued; on the CPU it only
    reads the clock.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = torch.device(device)
        self._side = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    @property
    def on_gpu(self) -> bool:
        return self._side is not None

    def wait(self, work) -> float:
        """``work.wait()``, and the time the collective was really done; the caller's stream waits too."""
        if self._side is None:
            work.wait()
            return time.perf_counter()
        with torch.cuda.stream(self._side):
            work.wait()  # the side stream now waits for NCCL's
        done = torch.cuda.Event()
        done.record(self._side)
        done.synchronize()
        finished = time.perf_counter()
        work.wait()  # and so does the caller's current stream, before it reads the result
        return finished
