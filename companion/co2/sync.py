"""The communication side of local SGD and CO2, on a flat bucket of the model's parameters.

Data-parallel training needs nothing here: its model is wrapped in PyTorch's DDP
(:func:`companion.lm.ddp.wrap`), which averages the gradients bucket by bucket during backward.

``net`` is anything with ``all_reduce(tensor, async_op) -> handle with wait()`` that sums in
place over ``world_size`` workers: a ``companion.comm.ModelledLink`` in the experiments, a
stand-in in the unit tests.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from .outer import outer_step_, pseudo_gradient
from .schedule import Schedule


class OuterSync:
    """Outer state of one worker for ``local_sgd`` and ``co2``, in the order of its lifecycle.

    Holds four flat copies of the model (the reviewers' count for CO2): the ``anchor`` every
    round starts from, the outer ``momentum``, and, while a CO2 reduction is in flight, its
    private ``snapshot`` buffer plus the anchor that round started from.

    Call :meth:`end_round` after every τ inner steps and :meth:`finish` once after the last.

    With ``track_progress=True`` it also keeps the previous round's pseudo-gradient (a fifth
    copy) and appends ``(<Δ_t, Δ_{t−1}>, |Δ_{t−1}|²)`` to ``delta_products`` at every applied
    round after the first: what :func:`companion.co2.stability.estimate_local_progress` needs.
    """

    def __init__(self, model: nn.Module, net, world_size: int, schedule: Schedule, *,
                 track_progress: bool = False) -> None:
        if schedule.method == "data_parallel":
            raise ValueError("OuterSync is for local_sgd and co2; data-parallel averages gradients")
        if not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
        self.net, self.world_size, self.schedule = net, world_size, schedule
        with torch.no_grad():
            self.anchor = parameters_to_vector(model.parameters()).detach().clone()
        self.momentum = torch.zeros_like(self.anchor)
        self._in_flight = None  # (handle, snapshot, anchor that round started from)
        self.rounds_applied = 0
        self.track_progress = bool(track_progress)
        self.delta_products: list[tuple[float, float]] = []
        self._prev_delta = None

    # 1. launch: reduce a private copy, never the live parameters
    def prepare_sync(self, model: nn.Module):
        """Snapshot the parameters into a new buffer and launch its all-reduce (async)."""
        with torch.no_grad():
            snapshot = parameters_to_vector(model.parameters()).detach().clone()
        handle = self.net.all_reduce(snapshot, async_op=True)
        return handle, snapshot, self.anchor.clone()

    # 2. consume: wait for a reduction and take one outer step with it
    def perform_sync(self, in_flight, *, stale: bool) -> None:
        """Wait for ``in_flight`` and apply ``a ← a − α clip(β m + Δ/Λ)`` with its average."""
        handle, snapshot, started_from = in_flight
        handle.wait()
        average = snapshot.div_(self.world_size)
        delta = pseudo_gradient(started_from, average)
        if self.track_progress:
            if self._prev_delta is not None:
                prev = self._prev_delta
                self.delta_products.append((float(delta @ prev), float(prev @ prev)))
            self._prev_delta = delta.clone()  # the outer step below may change delta in place
        outer_step_(self.anchor, self.momentum, delta, config=self.schedule.outer, stale=stale)
        self.rounds_applied += 1

    def end_round(self, model: nn.Module) -> None:
        """After τ inner steps: synchronise as the schedule says, then restart from the anchor."""
        launched = self.prepare_sync(model)
        if not self.schedule.stale:
            self.perform_sync(launched, stale=False)  # blocking: wait for this round's average
        else:
            if self._in_flight is not None:  # the previous round's average, one round late
                self.perform_sync(self._in_flight, stale=True)
            self._in_flight = launched
        self._load_anchor(model)

    def finish(self, model: nn.Module) -> None:
        """Drain the reduction still in flight (CO2) so every round's work is applied."""
        if self._in_flight is not None:
            self.perform_sync(self._in_flight, stale=True)
            self._in_flight = None
            self._load_anchor(model)

    def _load_anchor(self, model: nn.Module) -> None:
        # the parameters become views of a private copy: the outer step's in-place updates of
        # the anchor must not reach the live model (the inner optimizer keeps the same Parameter
        # objects, only their data changes)
        with torch.no_grad():
            vector_to_parameters(self.anchor.clone(), model.parameters())


class _Done:
    """A handle whose reduction has already completed."""

    def wait(self) -> bool:
        return True


class SoloNet:
    """The communicator of a single worker: reductions are no-ops that complete at once.

    Lets :class:`OuterSync` and :func:`companion.co2.worker.train_loop` run in one process
    (the book's bookkeeping example, the unit tests).
    """

    world_size = 1

    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False):
        return _Done() if async_op else None

    @contextmanager
    def compute(self, name: str = "compute") -> Iterator[None]:
        yield
