"""A row-parallel GEMM and its ring reduce-scatter on real processes, three ways.

Each rank holds ``A_r`` ``(M, K)`` and ``B_r`` ``(K, N)`` and must end with block ``r`` (rows
``[r M/p, (r+1) M/p)``) of ``sum_r A_r @ B_r``.  :func:`run_schedule` runs one schedule of
:mod:`companion.t3.layout` once, through a :class:`companion.comm.ModelledLink`:

1. a GEMM thread computes the layout's groups in order, inside ``net.compute`` spans (so
   the link's contention factor stretches them), and records each finished row chunk in a
   :class:`~companion.t3.tracker.ChunkTracker`;
2. one receiving thread per incoming partial waits for it, holds it until the sender's
   modelled completion time, and records it in the tracker;
3. the write that fills a chunk's counter adds the partial in and has the chunk ``isend`` to
   the right neighbour at once (T3's track & trigger); the rank's own block is then complete.

Only the calling thread talks to the process group: it posts every receive before the clock
starts, and a firing thread hands it each send and waits until it is issued (that wait is the
firing thread's issue time, as in the event model). The helper threads compute, sleep, or wait
on works already posted, so no two threads issue point-to-point calls at once. A sender's
modelled completion travels as a time on its own clock and the receiver turns it into its own
with an offset estimated explicitly (:func:`companion.comm.clock.left_clock_offset`), so the
ranks need not share a clock.

The same ring of point-to-point messages serves all three schedules, so they differ only in
when each chunk is ready. The ring's messages are told apart by tags, which gloo honours; NCCL
ignores tags and runs a send and a receive with the same peer on one stream, so receives posted
ahead of the sends would reorder or block there: :func:`run_schedule` refuses NCCL.
"""

from __future__ import annotations

import queue
import threading
import time

import torch
import torch.distributed as dist

from companion.comm import ModelledLink, Timeline
from companion.comm.clock import left_clock_offset
from companion.comm.device_timing import stream_done

from .layout import ScheduleLayout, block_of, check_rows, item_rows, make_layout
from .tracker import ChunkTracker

__all__ = ["run_schedule"]

# Tags of the ring's messages: the data of chunk (s, j) and the sender's modelled completion time.
_DATA_TAG, _TIME_TAG = 100, 100_000


def _tag(item, chunks_per_block: int) -> int:
    return item[0] * chunks_per_block + item[1]


def _refuse_untagged_backend() -> None:
    backend = dist.get_backend()
    if backend != "gloo":
        raise ValueError(
            f"T3's software schedules need a backend that matches point-to-point messages by tag, "
            f"got backend={backend!r}: NCCL ignores tags and serialises a send and a receive with "
            "the same peer; run them with comm.launch(..., backend='gloo')"
        )


def run_schedule(a: torch.Tensor, b: torch.Tensor, layout: ScheduleLayout, net: ModelledLink,
                 timeline: Timeline, clock_offset_s: float | None = None) -> tuple[torch.Tensor, float, dict]:
    """Run ``layout`` once on this rank (the calling thread issues every call to the process group).

    ``a`` ``(M, K)`` and ``b`` ``(K, N)`` are on :func:`companion.comm.device`.
    ``clock_offset_s`` is the left neighbour's clock minus this rank's
    (:func:`companion.comm.clock.left_clock_offset`; estimated here when ``None``).

    Returns this rank's reduced block ``(M/p, N)``, the run's seconds, and the software's
    times: ``gemm_s`` (each GEMM group before its contention stretch), ``issue_s`` (how long
    each firing thread waited for its send to be handed to the link) and ``wake_s`` (from
    each partial's modelled arrival until its receiving thread ran).  The clock starts at
    a barrier (``timeline.reset()``) and stops when the block is complete and every send this
    rank made has completed on the modelled link.
    """
    _refuse_untagged_backend()
    if clock_offset_s is None:
        clock_offset_s, _ = left_clock_offset()
    p, rank = dist.get_world_size(), dist.get_rank()
    m_rows, n_cols = a.shape[0], b.shape[1]
    check_rows(m_rows, p, layout.chunks_per_block)
    dev = a.device
    left, right = (rank - 1) % p, (rank + 1) % p
    # zeros, not empty: writing every page now takes the page faults of fresh buffers
    # before the clock starts; with empty they would land inside the timed GEMM (a few ms
    # for a 4 MiB output on a CPU), which calibration times on buffers already touched
    out = torch.zeros(m_rows, n_cols, dtype=a.dtype, device=dev)
    rows = {item: item_rows(item, rank, m_rows, layout) for item in layout.items}
    incoming = [item for item in layout.items if item[0] > 0]
    received = {item: torch.zeros(rows[item].stop - rows[item].start, n_cols, dtype=a.dtype, device=dev)
                for item in incoming}
    stamps = {item: torch.zeros(1, dtype=torch.float64, device=dev) for item in incoming}
    # 1. post every receive before the clock starts: chunk (s, j) here is the left
    #    neighbour's chunk (s - 1, j), sent under that chunk's tag
    works = {}
    for item in incoming:
        tag = _tag((item[0] - 1, item[1]), layout.chunks_per_block)
        works[item] = (dist.irecv(received[item], left, tag=_DATA_TAG + tag),
                       dist.irecv(stamps[item], left, tag=_TIME_TAG + tag))
    sends, keep_alive, done_at, issue_s, wake_s = [], [], {}, [], []
    requests: queue.SimpleQueue = queue.SimpleQueue()  # (item, handed-over event) or (None, error)

    def issue(item) -> None:
        # on the calling thread: hand chunk ``item`` to the link, with its modelled completion
        tag = _tag(item, layout.chunks_per_block)
        transfer = net.isend(out[rows[item]], right, name=f"send {block_of(item, rank, p)}.{item[1]}",
                             tag=_DATA_TAG + tag)
        # the time is on this rank's clock; the receiver turns it into its own with the offset
        stamp = torch.tensor([transfer.done_s], dtype=torch.float64, device=dev)
        keep_alive.append((stamp, dist.isend(stamp, right, tag=_TIME_TAG + tag)))
        sends.append(transfer)

    def trigger(item) -> None:
        # the chunk's counter is full: add the partial in, then send it on (or keep it)
        if item[0] > 0:
            start = time.perf_counter()
            out[rows[item]] += received[item]
            stream_done(dev)
            timeline.record(f"reduce {block_of(item, rank, p)}.{item[1]}", "compute", start, time.perf_counter())
        if item[0] == p - 1:
            done_at[item] = time.perf_counter()
            return
        # the firing thread is busy until the calling thread has handed the send over
        issued, handed = time.perf_counter(), threading.Event()
        requests.put((item, handed))
        handed.wait()
        issue_s.append(time.perf_counter() - issued)

    # a chunk of ring step s > 0 is complete after two writes: its GEMM rows and the partial
    tracker = ChunkTracker({item: 2 if item[0] > 0 else 1 for item in layout.items}, trigger)
    errors: list[BaseException] = []

    def receive(item) -> None:
        # waits on works posted by the calling thread; never calls the process group itself
        try:
            data, stamp = works[item]
            data.wait()
            stamp.wait()
            due = float(stamps[item][0]) - clock_offset_s
            early = due - time.perf_counter()
            if early > 0:  # the bytes are here early; the link delivers them at done_s
                time.sleep(early)
            wake_s.append(max(time.perf_counter() - due, 0.0))
            tracker.record(item)
        except BaseException as err:  # re-raised on the calling thread
            errors.append(err)
            requests.put((None, err))

    gemm_s = []
    go = threading.Event()

    def gemm() -> None:
        # 2. the GEMM, group by group; each finished row chunk counts one write
        try:
            go.wait()
            for index, group in enumerate(layout.groups):
                with net.compute(f"gemm {index}"):
                    start = time.perf_counter()
                    for item in group:
                        torch.matmul(a[rows[item]], b, out=out[rows[item]])
                    stream_done(dev)
                    gemm_s.append(time.perf_counter() - start)
                for item in group:
                    tracker.record(item)
        except BaseException as err:
            errors.append(err)
            requests.put((None, err))

    # the threads start before the clock (a loaded machine takes milliseconds to start one);
    # the GEMM waits for the barrier, the receivers for works posted above
    threads = [threading.Thread(target=receive, args=(item,), daemon=True) for item in incoming]
    threads.append(threading.Thread(target=gemm, name="t3-gemm", daemon=True))
    for thread in threads:
        thread.start()
    dist.barrier()
    timeline.reset()
    go.set()
    # 3. every send leaves from this thread, in the order the chunks fire
    for _ in layout.sent_items:
        item, handed = requests.get()
        if item is None:
            raise handed
        issue(item)
        handed.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    if not tracker.complete:
        raise RuntimeError(f"chunks never completed: {set(tracker.expected) - set(tracker.fired)}")
    for transfer in sends:
        transfer.wait()
    for _, work in keep_alive:
        work.wait()
    end = max([*done_at.values(), *(t.end_s for t in sends)])
    own = rows[(p - 1, 0)].start
    block = m_rows // p
    return out[own:own + block].clone(), end - timeline.origin, {"gemm_s": gemm_s, "issue_s": issue_s, "wake_s": wake_s}
