"""The data-parallel baseline of the DiLoCo and CO2 chapters: DDP, with its buckets on the timeline.

:func:`wrap` puts a model in ``torch.nn.parallel.DistributedDataParallel`` with
``gradient_as_bucket_view=True`` (gradients live in DDP's bucket buffers, no copy) and a small
``bucket_cap_mb`` (:data:`BUCKET_CAP_MB`), and registers a :class:`TimedAllReduce` communication
hook. DDP calls the hook for each bucket as soon as the bucket's gradients are computed, so the
all-reduce of the last layers' gradients runs while the backward pass is still computing the
first layers': that is the part of its communication DDP already hides, and the baseline
DiLoCo, Streaming DiLoCo and CO2 must beat. :func:`forward_backward` records the forward and
backward spans of one step, :func:`bucket_overlap` measures the hidden and the exposed parts.

The hook does exactly what ``torch.distributed.algorithms.ddp_comm_hooks.default_hooks.
allreduce_hook`` does (divide the bucket by the world size, all-reduce it in place, hand the
same tensor back; ``tests/diloco`` checks the gradients are bit-identical), but it issues the
all-reduce through the rank's :class:`companion.comm.ModelledLink`, so a modelled slow link
delays DDP exactly as it delays every other collective of the book, and its bytes and spans
are counted in the same place. On bare gloo the recorded completion of a bucket is the
``perf_counter`` of the gloo work future's done-callback. Under NCCL a work future completes
when the collective is *enqueued* on NCCL's stream, not when it ends, so host times say
nothing there: one would record CUDA events on NCCL's stream around each bucket instead.
"""

import math
import queue
import threading
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from companion.lm.train import lm_loss

#: DDP bucket size, in MiB. DDP's default (25 MiB, and 1 MiB for the first bucket) would put
#: the whole gradient of the book's toy models (0.1-0.2 MB in fp32) in one bucket, which is
#: ready only when the backward pass has ended: one blocking all-reduce, nothing overlapped.
#: 0.05 MiB (52,429 bytes) is about one transformer block of the DiLoCo model (12,704
#: parameters, 50,816 bytes at ``d_model = 32``), so the model travels in a few buckets and
#: all but the last can leave while backward still runs.
BUCKET_CAP_MB = 0.05

#: Name prefixes of the spans :func:`forward_backward` and :class:`TimedAllReduce` record; both
#: names end in ``step <n>``.
BACKWARD_SPAN = "backward"
BUCKET_SPAN = "all_reduce bucket"


def check_bucket_cap_mb(bucket_cap_mb: float) -> float:
    """Return ``bucket_cap_mb`` as a float if it is a finite number > 0, else raise ``ValueError``."""
    if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not (
            math.isfinite(bucket_cap_mb) and bucket_cap_mb > 0):
        raise ValueError(f"bucket_cap_mb must be a finite number of MiB > 0, got {bucket_cap_mb!r}; "
                         f"the book uses BUCKET_CAP_MB = {BUCKET_CAP_MB} (several buckets per model)")
    return float(bucket_cap_mb)


def clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the work queued on ``device``'s *current* stream is done.

    On the CPU that is plain ``perf_counter``. On a GPU it waits on a CUDA event recorded on the
    compute stream only, never ``torch.cuda.synchronize()``, which would also wait for the
    collectives on NCCL's stream and so destroy the overlap it is meant to measure.
    """
    if device.type == "cuda":
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(device))
        event.synchronize()
    return time.perf_counter()


@dataclass(frozen=True)
class BucketRecord:
    """One bucket's all-reduce: ``step``, DDP's bucket ``index``, payload ``nbytes`` (the bucket's
    gradients), ``numel``, and ``issued_s``/``done_s`` in seconds on the rank's timeline."""

    step: int
    index: int
    nbytes: int
    numel: int
    issued_s: float
    done_s: float


class TimedAllReduce:
    """A DDP communication hook: ``allreduce_hook`` through a ``ModelledLink``, timed per bucket.

    Register ``ddp_model.register_comm_hook(None, hook.all_reduce_bucket)`` (:func:`wrap` does). DDP waits
    for the returned futures at the end of ``backward()``; a helper thread completes them in issue
    order once each transfer is done, so the caller's thread is free to go on computing.

    Attributes
    ----------
    records : list of BucketRecord
        Every bucket of every step, in completion order (times relative to ``net.timeline``'s
        origin, or absolute ``perf_counter`` seconds without a timeline).
    last_issue_s : float or None
        Absolute ``perf_counter`` time the current step's last bucket was issued: every gradient
        had been computed by then, so it ends the step's backward pass.
    """

    def __init__(self, net, device: torch.device | None = None) -> None:
        self.net = net
        self.world_size = net.world_size
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.records: list[BucketRecord] = []
        self.step = 0
        self.last_issue_s: float | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def begin_step(self, step: int) -> None:
        """Label the buckets issued from now on with ``step``."""
        self.step, self.last_issue_s = step, None

    def all_reduce_bucket(self, state, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        """The hook itself (DDP checks its signature: ``(state, bucket)``, returning that Future)."""
        issued = clock(self.device)
        tensor = bucket.buffer()  # the bucket's gradients, one flat fp32 view (gradient_as_bucket_view)
        tensor.div_(self.world_size)  # as allreduce_hook: divide first, then sum
        index = bucket.index()
        transfer = self.net.all_reduce(tensor, async_op=True, name=f"{BUCKET_SPAN} {index} step {self.step}")
        fut = torch.futures.Future()
        if self._thread is None:
            self._thread = threading.Thread(target=self._complete, name="ddp-bucket-waiter", daemon=True)
            self._thread.start()
        self._queue.put((transfer, tensor, fut, self.step, index))
        self.last_issue_s = issued
        return fut

    def _complete(self) -> None:
        origin = 0.0 if self.net.timeline is None else self.net.timeline.origin
        while True:
            item = self._queue.get()
            if item is None:
                return
            transfer, tensor, fut, step, index = item
            try:
                transfer.wait()  # the real all-reduce, then the modelled completion
                self.records.append(BucketRecord(step, index, tensor.numel() * tensor.element_size(),
                                                 tensor.numel(), transfer.issued_s - origin,
                                                 transfer.end_s - origin))
                fut.set_result(tensor)
            except BaseException as err:  # DDP re-raises it from backward()
                fut.set_exception(err)

    def close(self) -> None:
        """Stop the helper thread (after the last step)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def step_nbytes(self, step: int) -> int:
        """Bytes of gradients all-reduced at ``step``, summed over its buckets."""
        return sum(r.nbytes for r in self.records if r.step == step)


def wrap(model: torch.nn.Module, net, *, bucket_cap_mb: float = BUCKET_CAP_MB):
    """``(DistributedDataParallel(model), hook)``: DDP with bucket views, a small cap, a :class:`TimedAllReduce`.

    ``model`` must already be on :func:`companion.comm.device`; ``net`` is the rank's
    ``ModelledLink`` (its timeline receives one communication span per bucket).
    """
    bucket_cap_mb = check_bucket_cap_mb(bucket_cap_mb)
    device = next(model.parameters()).device
    ddp = DistributedDataParallel(
        model, device_ids=[device] if device.type == "cuda" else None, bucket_cap_mb=bucket_cap_mb,
        gradient_as_bucket_view=True,
    )
    hook = TimedAllReduce(net, device)
    ddp.register_comm_hook(None, hook.all_reduce_bucket)
    return ddp, hook


def forward_backward(ddp_model, hook: TimedAllReduce, timeline, tokens: torch.Tensor, step: int) -> torch.Tensor:
    """One step's forward and backward through DDP; records a ``forward`` and a ``backward`` span.

    The backward span ends when the last bucket was issued (every gradient is computed by
    then); the rest of ``backward()`` is DDP waiting for the all-reduces, which is exposed
    communication, not compute. Returns the loss.
    """
    device = hook.device
    start = clock(device)
    loss = lm_loss(ddp_model, tokens)
    mid = clock(device)
    hook.begin_step(step)
    loss.backward()  # DDP: the hook all-reduces each bucket as it fills; waits for all of them
    end = hook.last_issue_s if hook.last_issue_s is not None else clock(device)
    if timeline is not None:
        timeline.record(f"forward {step}", "compute", start, mid)
        timeline.record(f"{BACKWARD_SPAN} step {step}", "compute", mid, max(mid, end))
    return loss


def _step_of(name: str) -> int:
    return int(name.rsplit(" ", 1)[1])


def bucket_overlap(spans, first_step: int = 2) -> dict:
    """How much of DDP's communication ran inside the backward pass, from a run's spans.

    Keeps the ``backward`` compute spans and the bucket communication spans of steps
    ``>= first_step`` and hands them to :func:`companion.comm.summarize`: ``hidden_s`` is the
    time a bucket was in flight while backward computed, ``exposed_s`` the rest of the buckets'
    time (the wait at the end of ``backward()``). The default leaves out step 1: DDP puts every
    gradient of its first step in one bucket, learns the order in which they became ready, and
    only then rebuilds its buckets. Returns the worst rank's ``comm_s``, ``hidden_s``,
    ``exposed_s``, ``hidden_fraction`` (hidden over comm) and ``backward_s``, and ``per_rank``.
    """
    from companion.comm import summarize

    kept = [s for s in spans if ((s.kind == "compute" and s.name.startswith(BACKWARD_SPAN))
                                 or (s.kind == "comm" and s.name.startswith(BUCKET_SPAN)))
            and _step_of(s.name) >= first_step]
    if not any(s.kind == "comm" for s in kept):
        raise ValueError(f"no DDP bucket spans from step {first_step} on among these spans: pass the "
                         "spans of a data-parallel run with more steps, or a smaller first_step")
    stats = summarize(kept)

    def figures(r: dict) -> dict:
        return dict(comm_s=r["comm_s"], hidden_s=r["hidden_comm_s"], exposed_s=r["exposed_comm_s"],
                    hidden_fraction=r["hidden_comm_s"] / r["comm_s"] if r["comm_s"] > 0 else math.nan,
                    backward_s=r["compute_s"])

    return {**figures(stats), "per_rank": {k: figures(v) for k, v in stats["per_rank"].items()}}
