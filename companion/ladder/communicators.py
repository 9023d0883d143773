"""What the tensor-parallel forward needs from a network, and the trivial network.

The decoder of :mod:`companion.ladder.model` talks to the network through two methods only:

- ``all_reduce(tensor, async_op=True, name=...) -> work``: sum ``tensor`` over the tensor-parallel
  ranks *in place*; ``work.wait()`` returns once the sum is in ``tensor``; ``name`` labels timelines;
- ``compute(name)``: a context manager around each module's local computation (a timeline uses it
  to draw compute spans; it does nothing here).

:class:`companion.comm.ModelledLink` has both, so the same forward runs over a modelled slow link,
over bare gloo, over a link the kernel throttles (:mod:`companion.ladder.shaping`), or, with
:class:`NoCommunication`, on one process. :class:`FunctionalCollectives`
is the same interface on PyTorch's functional collectives, the API that DTensor itself uses.
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


class CountingCommunicator:
    """Another communicator, with a count of the all-reduces issued through it and their payload.

    ``n_all_reduces`` counts calls, ``payload_bytes`` the bytes of the tensors handed over (what a
    rank contributes to each sum, not what a ring sends: ``2 (p - 1) / p`` times that on the wire,
    which :class:`companion.comm.ModelledLink` counts as ``bytes_sent``). Both say what a forward
    really issued, so a test can hold them against :func:`companion.ladder.all_reduces_per_forward`.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.n_all_reduces = 0
        self.payload_bytes = 0

    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False, name: str = "all_reduce"):
        self.n_all_reduces += 1
        self.payload_bytes += tensor.numel() * tensor.element_size()
        return self.inner.all_reduce(tensor, async_op=async_op, name=name)

    def compute(self, name: str) -> ContextManager:
        return self.inner.compute(name)


class _FirstUseWork:
    """The handle :meth:`FunctionalCollectives.all_reduce` returns: the sum lands at ``wait``.

    ``reduced`` is the :class:`~torch.distributed._functional_collectives.AsyncCollectiveTensor`
    of the issued all-reduce; ``wait`` copies it into the caller's tensor, and that copy is its
    first use, where the collective is waited on.
    """

    def __init__(self, tensor: torch.Tensor, reduced: torch.Tensor) -> None:
        self.tensor, self.reduced = tensor, reduced

    @property
    def completed(self) -> bool:
        """True once the all-reduce has been waited on (its result read)."""
        return bool(getattr(self.reduced, "completed", True))

    def wait(self) -> bool:
        self.tensor.copy_(self.reduced)  # first use of the result: the collective is waited here
        return True


class FunctionalCollectives:
    """The all-reduce of :func:`torch.distributed._functional_collectives.all_reduce`, waited at first use.

    A functional collective does not write into its input: ``all_reduce(t, "sum", group)`` issues
    the collective and returns at once an ``AsyncCollectiveTensor``, a tensor subclass whose first
    use (any operation that reads it) calls ``wait_tensor`` and so blocks until the sum has
    arrived; later uses read it directly. DTensor's ``redistribute(..., async_op=True)`` returns
    the same kind of tensor, so ``RowwiseParallel``'s all-reduce is deferred in the same way.

    That is exactly the Ladder's deferred wait. :meth:`companion.ladder.Decoder.forward` keeps a
    Ladder module's output in its queue while the next module computes, and first touches it when
    it adds it to the stream one module later (``work.wait()`` here, where the result is copied
    into the partial output the decoder holds). Between the issue and that first use the
    collective runs on the process group's own thread (gloo) or stream (NCCL), under the next
    module's compute: the overlap that the hand-written ``async_op=True`` / ``work.wait()`` pair
    gives, with no handle to carry. A standard module reads the stream at once, so its all-reduce
    is waited on immediately, as it must be.

    ``group`` is a process group, a list of ranks or a 1-D device mesh (default: the world);
    ``timeline`` (optional) receives the compute spans, as for :class:`NoCommunication`.
    """

    def __init__(self, group=None, timeline=None) -> None:
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised; create FunctionalCollectives "
                               "inside a worker (companion.comm.launch)")
        self.group = dist.group.WORLD if group is None else group
        self.timeline = timeline
        self.n_all_reduces = 0

    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False,
                   name: str = "all_reduce") -> _FirstUseWork | None:
        from torch.distributed import _functional_collectives as funcol

        self.n_all_reduces += 1
        work = _FirstUseWork(tensor, funcol.all_reduce(tensor, "sum", self.group))
        if async_op:
            return work
        work.wait()
        return None

    def compute(self, name: str) -> ContextManager:
        return nullcontext() if self.timeline is None else _compute_span(self.timeline, name)
