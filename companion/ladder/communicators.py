"""What the tensor-parallel forward needs from a network, and the trivial network.

The decoder of :mod:`companion.ladder.model` talks to the network through two methods only:

- ``all_reduce(tensor, async_op=True, name=...) -> work``: sum ``tensor`` over the tensor-parallel
  ranks *in place*; ``work.wait()`` returns once the sum is in ``tensor``; ``name`` labels timelines;
- ``compute(name)``: a context manager around each module's local computation (a timeline uses it
  to draw compute spans; it does nothing here).

:class:`companion.comm.ModelledLink` has both, so the same forward runs over a modelled slow link,
over bare gloo, or, with :class:`NoCommunication`, on one process.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import ContextManager, Iterator, Protocol

import torch

from companion.comm.device_timing import stream_done
from companion.comm.devices import device


class Work(Protocol):
    """A handle on an all-reduce in flight."""

    def wait(self) -> object: ...


class Communicator(Protocol):
    """The two methods :meth:`companion.ladder.Decoder.forward` calls."""

    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False, name: str = "all_reduce") -> Work | None: ...

    def compute(self, name: str) -> ContextManager: ...


class _DoneWork:
    """A work handle whose operation has already completed."""

    def wait(self) -> bool:
        return True


class NoCommunication:
    """An all-reduce that leaves its tensor as it is.

    At one rank this *is* the all-reduce (a sum over one rank), so a single-process model uses it.
    At ``p > 1`` ranks it skips communication altogether: every rank keeps its partial sums, the
    outputs are wrong, and the run time is the compute-only upper bound on speed that
    Zhang et al. (2025) report beside Ladder Residual.

    ``timeline`` (a :class:`companion.comm.Timeline`, optional) receives the compute spans.
    """

    def __init__(self, timeline=None) -> None:
        self.timeline = timeline

    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False, name: str = "all_reduce") -> _DoneWork | None:
        return _DoneWork() if async_op else None

    def compute(self, name: str) -> ContextManager:
        return nullcontext() if self.timeline is None else _compute_span(self.timeline, name)


@contextmanager
def _compute_span(timeline, name: str) -> Iterator[None]:
    """A compute span that, on a GPU, ends when the kernels queued in it are done."""
    with timeline.span(name, kind="compute"):
        yield
        stream_done(device())
