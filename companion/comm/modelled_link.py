"""A slow network modelled over real collectives.

Every operation really runs on the process group (the tensors hold the true reduced values),
and its completion is held back until the time the alpha-beta model gives for the chosen
:class:`~companion.comm.cost_model.Link`. One clock per rank serialises transfers the way a
network card does: a transfer starts when it is issued or when the previous one is done,
whichever is later. A collective completes for every rank no earlier than the last rank's
issue plus the transfer time (each collective is followed by a tiny MAX all-reduce of the
ranks' issue offsets since their last barrier). Waiting sleeps, so the CPU stays free for
compute, as with a DMA engine; point-to-point waits and the ring reduce-scatter run on one
persistent watcher thread per link.

On a GPU (NCCL) a collective's real completion is taken after ``work.wait()`` on a stream the
link owns, and a :meth:`~ModelledLink.compute` block ends when its kernels do
(:mod:`~companion.comm.device_timing`). :meth:`~ModelledLink.reduce_scatter` issues NCCL's own
reduce-scatter from the caller's thread there (a communicator is driven from one thread); the
ring on the watcher thread is gloo's path only.

What this proves and what it does not: the reduced tensors are real, but the *time* is the
model's; agreement between a run on a ``ModelledLink`` and the alpha-beta model only shows that
the schedule and the bookkeeping are right. To test the model against a network, run over a
:class:`~companion.comm.ShapedLink`.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as dist

from .cost_model import Link, broadcast_sends
from .device_timing import CollectiveClock, stream_done
from .devices import device
from .ring import _peers, ring_reduce_scatter_into
from .timeline import Timeline, _intersection_length, _union


#: The last seconds of a wait are spun rather than slept: a sleeping process on a loaded machine
#: wakes up late (milliseconds), which would add time the model does not have.
SPIN_S = 0.001


def _sleep_until(deadline: float) -> None:
    """Return at ``deadline`` (perf_counter seconds): sleep, then spin the final :data:`SPIN_S`."""
    remaining = deadline - time.perf_counter()
    if remaining > SPIN_S:
        time.sleep(remaining - SPIN_S)
    while time.perf_counter() < deadline:
        pass


class Transfer:
    """The handle of one modelled transfer; ``wait()`` returns at its completion time.

    Attributes (absolute ``time.perf_counter`` seconds): ``issued_s``, ``start_s`` (when the link
    takes it), ``done_s`` (modelled completion), and after ``wait()`` ``ready_s`` (when the last
    rank had issued it: the time before that is waiting for another rank, not for the link),
    ``real_done_s`` (when the real collective finished) and ``end_s`` = max(done_s, real_done_s).
    """

    def __init__(self, net: "ModelledLink", name: str, waiter, issued_s: float, start_s: float, done_s: float,
                 nbytes: int, last_issue=None) -> None:
        self._net, self._waiter, self._last_issue = net, waiter, last_issue
        self._ready_s, self._cost_s, self._resolved = start_s, done_s - start_s, net.link is None
        self.ready_s = start_s
        self.name, self.nbytes = name, nbytes
        self.issued_s, self.start_s, self.done_s = issued_s, start_s, done_s
        self.real_done_s: float | None = None
        self.end_s: float | None = None

    @property
    def cost_s(self) -> float:
        return self.done_s - self.start_s

    def is_completed(self) -> bool:
        return self.end_s is not None

    def wait(self) -> bool:
        """Block until the real operation is done and the modelled time has come; idempotent."""
        if self.end_s is not None:
            return True
        self.real_done_s = self._waiter()
        self._net._resolve_through(self)
        _sleep_until(self.done_s)
        self.end_s = max(self.done_s, self.real_done_s)
        if self._net.timeline is not None:
            # bare: the call itself is communication unless it is recorded as issue work
            bare_start = self.start_s if self._net.record_issue else self.issued_s
            start = self.start_s if self._net.link is not None else bare_start
            self._net.timeline.record(self.name, "comm", start, self.end_s)
        return True


def _future_waiter(work, watcher: "_Watcher", clock: CollectiveClock | None = None):
    """Wait for a torch ``Work`` and return when (perf_counter seconds) it really finished.

    With a GPU ``clock`` (NCCL) the time is taken after the collective, not from its future,
    which NCCL completes when the work is queued (:mod:`~companion.comm.device_timing`).
    """
    if clock is not None and clock.on_gpu:
        return lambda: clock.wait(work)
    finished: list[float] = []
    try:
        fut = work.get_future()
    except RuntimeError:  # point-to-point work has no future: watch it from the watcher thread
        return watcher.submit(work.wait)
    fut.add_done_callback(lambda _: finished.append(time.perf_counter()))

    def waiter() -> float:
        work.wait()
        fut.wait()
        return finished[0] if finished else time.perf_counter()

    return waiter


class _Watcher:
    """One persistent thread per :class:`ModelledLink` that runs blocking calls in order.

    Point-to-point work has no future to watch, and the ring reduce-scatter is a sequence of
    blocking sends and receives; both run here, one after the other, instead of on a new thread
    per call (starting a thread costs more than a small message on a fast link).
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def _loop(self) -> None:
        while True:
            target, args, box, done = self._queue.get()
            try:
                target(*args)
            except BaseException as err:  # re-raised by the waiter
                box["error"] = err
            box["done"] = time.perf_counter()
            done.set()

    def submit(self, target, *args):
        """Queue ``target(*args)``; return a waiter that blocks until it ran and returns its finish time."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="modelled-link-watcher", daemon=True)
                self._thread.start()
        box: dict = {}
        done = threading.Event()
        self._queue.put((target, args, box, done))

        def waiter() -> float:
            done.wait()
            if "error" in box:
                raise box["error"]
            return box["done"]

        return waiter


class ModelledLink:
    """The collectives of one rank, timed as if over ``link``.

    Parameters
    ----------
    link : Link or None
        The modelled link; ``None`` runs bare (the real backend's own speed, no added delay).
    timeline : Timeline or None
        Where communication spans (on :meth:`Transfer.wait`) and compute spans go.
    contention : float
        ``c >= 0``: a :meth:`compute` block is stretched by ``c`` times its overlap with
        transfers in flight (communication that steals compute resources, as in T3).
    group : process group or None
        The group to communicate in (default: the world). Issue every collective of the group
        through this object, in the same order on every rank.
    record_issue : bool
        Also record the host time each call spends before the link takes the data (checks, a
        copy, waking the backend's threads) as a compute span named ``"issue <name>"``: it is CPU
        work of the caller that no link can hide.
    """

    def __init__(self, link: Link | None, timeline: Timeline | None = None, contention: float = 0.0,
                 group=None, record_issue: bool = False) -> None:
        if link is not None and not isinstance(link, Link):
            raise ValueError(f"link must be a comm.Link or None, got {link!r}")
        if not contention >= 0:
            raise ValueError(f"contention must be >= 0, got {contention!r}")
        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialised; create the ModelledLink inside a worker")
        self.link, self.timeline, self.contention, self.group = link, timeline, float(contention), group
        self.record_issue = bool(record_issue)
        self.world_size = dist.get_world_size(group)
        self.rank = dist.get_rank(group)
        self.link_free_at = 0.0
        self.bytes_sent = 0
        self._intervals: list[tuple[float, float]] = []
        self._counter = 0
        # The link clock and the in-flight list are shared by the caller and any thread that
        # issues sends (T3's trigger fires sends from a helper thread).
        self._lock = threading.Lock()
        self._watcher = _Watcher()
        self._device = device()
        self._clock = CollectiveClock(self._device)
        self._pending: list[Transfer] = []  # modelled transfers not yet resolved, in issue order
        self._resolve_lock = threading.Lock()
        self._resolved_free_at = 0.0
        # The clocks of the ranks are aligned at barriers: a collective's issue time travels as
        # an offset from this rank's last barrier, never as a timestamp.
        self._epoch = time.perf_counter()
        if link is not None:
            self.barrier()

    # -- the link clock -------------------------------------------------------------------
    def _issue(self, name: str, cost_s: float, nbytes_sent: float, waiter, issued: float,
               collective: bool = False) -> Transfer:
        # the link takes the data once the backend has accepted it, after the call's host-side work
        # (checks, a copy, waking the backend's threads), which is the caller's time, not the link's
        now = time.perf_counter()
        if self.record_issue and self.timeline is not None:
            self.timeline.record(f"issue {name}", "compute", issued, now)
        with self._lock:
            if self.link is None:
                start = done = now
            else:
                start = max(now, self.link_free_at)
                done = start + cost_s
                self.link_free_at = done
                self._intervals.append((start, done))
            self.bytes_sent += int(round(nbytes_sent))
            self._counter += 1
        last_issue = self._exchange_issue_time(now) if collective and self.link is not None else None
        transfer = Transfer(self, name, waiter, issued, start, done, int(round(nbytes_sent)), last_issue)
        transfer._ready_s = now
        if self.link is not None:
            with self._lock:
                self._pending.append(transfer)
        return transfer

    def _resolve_through(self, transfer: Transfer) -> None:
        """Fix the start and completion of every transfer up to ``transfer``, in issue order.

        At issue, a transfer's times are provisional (this rank's clock alone). Here each starts
        at the later of the last rank's issue (collectives) or its own (point-to-point) and the
        end of the transfer before it on this rank's link.
        """
        if transfer._resolved:
            return
        with self._resolve_lock:
            while not transfer._resolved:
                with self._lock:
                    t = self._pending.pop(0)
                ready = t._last_issue() if t._last_issue is not None else t._ready_s
                t.ready_s = ready
                t.start_s = max(ready, self._resolved_free_at)
                t.done_s = t.start_s + t._cost_s
                t._resolved = True
                self._resolved_free_at = t.done_s
                with self._lock:
                    self.link_free_at = max(self.link_free_at, t.done_s)

    def _exchange_issue_time(self, now: float):
        """Start a MAX all-reduce of this rank's issue offset; return a waiter for the latest issue time.

        Offsets are seconds since each rank's last :meth:`barrier`, so no rank reads another's
        clock. Every rank issues it right after the collective it belongs to, in the same order.
        """
        epoch = self._epoch
        offset = torch.tensor([now - epoch], dtype=torch.float64, device=self._device)
        work = dist.all_reduce(offset, op=dist.ReduceOp.MAX, group=self.group, async_op=True)

        def last_issue() -> float:
            work.wait()
            return epoch + float(offset[0])

        return last_issue

    def _waiter(self, work):
        return _future_waiter(work, self._watcher, self._clock)

    def _cost(self, method: str, *args) -> float:
        return 0.0 if self.link is None else getattr(self.link, method)(*args)

    @staticmethod
    def _finish(transfer: Transfer, async_op: bool):
        if async_op:
            return transfer
        transfer.wait()
        return None

    # -- collectives ----------------------------------------------------------------------
    def all_reduce(self, tensor: torch.Tensor, async_op: bool = False, name: str = "all_reduce"):
        """Sum ``tensor`` over the group, in place; modelled as a ring all-reduce."""
        n, p = tensor.numel() * tensor.element_size(), self.world_size
        now = time.perf_counter()
        work = dist.all_reduce(tensor, group=self.group, async_op=True)
        sent = 2 * (p - 1) * n / p
        return self._finish(self._issue(name, self._cost("allreduce_time", n, p), sent, self._waiter(work), now,
                                        collective=True), async_op)

    def all_gather(self, tensor_list: list, tensor: torch.Tensor, async_op: bool = False, name: str = "all_gather"):
        """Gather every rank's ``tensor`` into ``tensor_list``; modelled as a ring all-gather."""
        if len(tensor_list) != self.world_size:
            raise ValueError(f"tensor_list needs {self.world_size} tensors, got {len(tensor_list)}")
        n, p = tensor.numel() * tensor.element_size(), self.world_size
        now = time.perf_counter()
        work = dist.all_gather(tensor_list, tensor, group=self.group, async_op=True)
        return self._finish(self._issue(name, self._cost("allgather_time", n * p, p), (p - 1) * n,
                                        self._waiter(work), now, collective=True), async_op)

    def broadcast(self, tensor: torch.Tensor, src: int, async_op: bool = False, name: str = "broadcast"):
        """Copy ``tensor`` of rank ``src`` (group rank) to every rank; modelled as a binomial tree."""
        if not 0 <= src < self.world_size:
            raise ValueError(f"src must be in [0, {self.world_size}), got {src}")
        n, p = tensor.numel() * tensor.element_size(), self.world_size
        global_src = src if self.group is None else dist.get_global_rank(self.group, src)
        now = time.perf_counter()
        work = dist.broadcast(tensor, global_src, group=self.group, async_op=True)
        sent = broadcast_sends((self.rank - src) % p, p) * n
        return self._finish(self._issue(name, self._cost("broadcast_time", n, p), sent, self._waiter(work), now,
                                        collective=True), async_op)

    def reduce_scatter(self, output: torch.Tensor, input: torch.Tensor, async_op: bool = False,
                       name: str = "reduce_scatter"):
        """Sum ``input`` of shape ``(p * k, ...)`` over ranks; this rank keeps chunk ``rank`` in ``output`` ``(k, ...)``.

        Under gloo, really runs a ring of ``isend``/``irecv`` on the link's watcher thread
        (gloo's own ``reduce_scatter_tensor`` is an all-reduce in disguise, with twice the
        traffic). Under NCCL, whose reduce-scatter is a true one and whose communicator must
        not be driven from two threads, it issues ``dist.reduce_scatter_tensor`` from the
        calling thread.
        """
        p = self.world_size
        if input.dim() == 0 or input.shape[0] % p != 0:
            raise ValueError(f"input's first dimension must be divisible by world size {p}, got {tuple(input.shape)}")
        if tuple(output.shape) != (input.shape[0] // p, *input.shape[1:]):
            raise ValueError(f"output must have shape {(input.shape[0] // p, *input.shape[1:])}, got {tuple(output.shape)}")
        n = input.numel() * input.element_size()
        tag = 1_000_000 + self._counter
        now = time.perf_counter()
        if dist.get_backend(self.group) == "nccl":
            work = dist.reduce_scatter_tensor(output, input, group=self.group, async_op=True)
            waiter = self._waiter(work)
        else:
            waiter = self._watcher.submit(ring_reduce_scatter_into, output, input, self.group, tag)
        return self._finish(self._issue(name, self._cost("reduce_scatter_time", n, p), (p - 1) * n / p, waiter, now,
                                        collective=True), async_op)

    def isend(self, tensor: torch.Tensor, dst: int, name: str = "isend", tag: int = 0) -> Transfer:
        """Send ``tensor`` to group rank ``dst``; modelled as one point-to-point message."""
        n = tensor.numel() * tensor.element_size()
        now = time.perf_counter()
        work = dist.isend(tensor, _peers(self.group)[dst], group=self.group, tag=tag)
        return self._issue(name, self._cost("p2p_time", n), n, self._waiter(work), now)

    def irecv(self, tensor: torch.Tensor, src: int, name: str = "irecv", tag: int = 0) -> Transfer:
        """Receive into ``tensor`` from group rank ``src``; modelled as one point-to-point message.

        The receiving rank's clock is charged too: its network card is busy while bytes arrive.
        """
        n = tensor.numel() * tensor.element_size()
        now = time.perf_counter()
        work = dist.irecv(tensor, _peers(self.group)[src], group=self.group, tag=tag)
        return self._issue(name, self._cost("p2p_time", n), 0, self._waiter(work), now)

    def barrier(self) -> None:
        """A real barrier (not modelled, not recorded); the ranks' clocks are aligned here."""
        dist.barrier(group=self.group)
        self._epoch = time.perf_counter()

    # -- compute ----------------------------------------------------------------------------
    @contextmanager
    def compute(self, name: str = "compute") -> Iterator[None]:
        """Record the ``with`` body as a compute span, stretched under contention.

        With ``contention = c > 0``, after the body runs the block sleeps ``c`` times the time
        it overlapped transfers in flight, so the span lasts ``t + c * overlap``. On a GPU the
        span ends when the kernels queued on the current stream are done (a CUDA event), so
        it neither stops at their launch nor waits for NCCL's stream.
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            stream_done(self._device)  # a GPU's compute ends when its kernels do, not when queued
            end = time.perf_counter()
            with self._lock:
                in_flight = [iv for iv in self._intervals if iv[1] > start]
            if self.contention > 0 and in_flight:
                overlap = _intersection_length([(start, end)], _union(in_flight))
                if overlap > 0:
                    _sleep_until(time.perf_counter() + self.contention * overlap)
                    end = time.perf_counter()
            with self._lock:
                self._intervals = [iv for iv in self._intervals if iv[1] > end]
            if self.timeline is not None:
                self.timeline.record(name, "compute", start, end)
