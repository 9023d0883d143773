"""Run a function on several processes with ``torch.distributed`` initialised, and clean up after.

:func:`launch` is the laptop path: ``world_size`` fresh processes on this machine, talking over
the loopback interface. :func:`run_under_torchrun` is the cluster path: the same worker function
started by ``torchrun`` on every machine, with NCCL when GPUs are present.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from datetime import timedelta
from multiprocessing.connection import wait as wait_for_ready

import torch
import torch.distributed as dist

from .devices import device  # noqa: F401  (re-exported: comm.launcher.device)
from .shaped_link import ShapedLink, ShapedNetwork, join_namespace, join_user_namespace

#: Environment variables that size the thread pools of the numerical libraries.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# os.environ is process-wide: concurrent launches take turns while they set it and start children.
_ENV_LOCK = threading.Lock()


class WorkerError(RuntimeError):
    """A worker process failed; ``rank`` names it and ``remote_traceback`` is its traceback text."""

    def __init__(self, rank: int, remote_traceback: str) -> None:
        self.rank = rank
        self.remote_traceback = remote_traceback
        super().__init__(f"rank {rank} failed:\n{remote_traceback}")

    def __reduce__(self):
        return (WorkerError, (self.rank, self.remote_traceback))


class _ForwardedStream(io.TextIOBase):
    """A text stream that ships whole lines from a worker to the caller, prefixed with the rank."""

    def __init__(self, send, rank: int, channel: str) -> None:
        self._send, self._rank, self._channel = send, rank, channel
        self._buffer = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        if "\n" in self._buffer:
            complete, self._buffer = self._buffer.rsplit("\n", 1)
            self._send(("out", self._rank, (self._channel, complete + "\n")))
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            text, self._buffer = self._buffer, ""
            self._send(("out", self._rank, (self._channel, text)))


def _exit_when_orphaned(parent_pid: int) -> None:
    """If the caller dies (even by SIGKILL), kill this worker's whole process group, children included."""
    while True:
        if os.getppid() != parent_pid:
            try:
                if os.getpgid(0) == os.getpid():  # our own group (set in _worker_main), nobody else's
                    os.killpg(os.getpid(), signal.SIGKILL)
            finally:
                os._exit(3)
        time.sleep(0.5)


def _worker_main(fn, rank, world_size, args, port, backend, threads_per_rank, conn, parent_pid, init_timeout_s,
                 netns_pid=None, userns_pid=None, strict_device=False):
    """Entry point of one worker process (runs in the child).

    With ``netns_pid`` (a :class:`~companion.comm.shaped_link.ShapedNetwork` holder) the rank
    connects to the caller's store first, then moves into that namespace, so gloo's sockets go
    over the shaped veth while the store's stays on the caller's loopback. With ``userns_pid``
    (unprivileged mode) it first joins that user namespace, while it is still single-threaded.
    """
    userns_error = None
    if userns_pid is not None:
        try:
            join_user_namespace(userns_pid)
        except PermissionError:
            userns_error = traceback.format_exc()
    try:
        os.setpgid(0, 0)  # own process group: the caller can kill this worker with its descendants
    except OSError:
        pass
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    send_lock = threading.Lock()

    def send(message) -> None:
        # plain pickle: tensors travel by value (multiprocessing's pickler would pass shared
        # memory handles that die with this process)
        payload = pickle.dumps(message)
        with send_lock:
            conn.send_bytes(payload)

    sys.stdout = _ForwardedStream(send, rank, "stdout")
    sys.stderr = _ForwardedStream(send, rank, "stderr")
    torch.set_num_threads(threads_per_rank)
    if userns_error is not None:
        send(("error", rank, (time.time(), userns_error)))
        return
    try:
        store = dist.TCPStore("127.0.0.1", port, world_size, False, timedelta(seconds=init_timeout_s))
        if netns_pid is not None:
            join_namespace(netns_pid)
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())  # one GPU per rank
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size,
                                timeout=timedelta(seconds=init_timeout_s))
    except BaseException:
        send(("error", rank, (time.time(), traceback.format_exc())))
        return
    try:
        if strict_device:
            from .placement import strict_placement

            with strict_placement():
                result = fn(rank, world_size, *args)
        else:
            result = fn(rank, world_size, *args)
    except BaseException:
        sys.stdout.flush()
        sys.stderr.flush()
        send(("error", rank, (time.time(), traceback.format_exc())))
        os._exit(1)  # skip destroying a process group whose peers may be stuck in a collective
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        dist.destroy_process_group()
    except Exception:
        pass
    send(("result", rank, result))


def _kill(processes) -> None:
    """SIGKILL every worker and its process group, then reap them."""
    for proc in processes:
        if proc.pid is None:
            continue
        try:
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
    for proc in processes:
        if proc.pid is not None:
            proc.join(timeout=5.0)


def _check_launch_args(fn, world_size, backend, timeout_s, threads_per_rank) -> None:
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {fn!r}")
    if getattr(fn, "__qualname__", "").find("<locals>") >= 0 or getattr(fn, "__name__", "") == "<lambda>":
        raise ValueError(f"fn must be defined at module level to be sent to a worker, got {fn!r}")
    if getattr(fn, "__module__", None) == "__main__":
        raise ValueError(f"fn {fn.__name__!r} lives in __main__ (a notebook or script); "
                         "define it in an importable module so spawned workers can find it")
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
    if isinstance(threads_per_rank, bool) or not isinstance(threads_per_rank, int) or threads_per_rank < 1:
        raise ValueError(f"threads_per_rank must be an integer >= 1, got {threads_per_rank!r}")


def _start_store(attempts: int = 5):
    """A rendezvous store served by the caller on a free loopback port (port 0: the OS picks)."""
    for attempt in range(attempts):
        try:
            return dist.TCPStore("127.0.0.1", 0, None, True, timedelta(seconds=30), wait_for_workers=False)
        except (RuntimeError, OSError) as err:  # EADDRINUSE from a racing launch
            if "in use" not in str(err).lower() or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise RuntimeError("unreachable")


def launch(fn, world_size: int, *args, backend: str = "gloo", timeout_s: float = 120.0,
           threads_per_rank: int = 1, link: ShapedLink | None = None, strict_device: bool = False) -> list:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` fresh processes and return their results.

    Each worker is started with the ``spawn`` method, limits its numerical libraries to
    ``threads_per_rank`` threads, joins a process group (``backend``) whose rendezvous store the
    caller serves on a free ``127.0.0.1`` port, runs ``fn`` and sends back its (picklable) result.
    Lines a worker prints reach the caller's ``sys.stdout``/``sys.stderr`` prefixed ``[rank r]``.

    With ``link`` (a :class:`~companion.comm.ShapedLink`, gloo only) every rank runs in its own
    network namespace whose NIC the kernel throttles to the link's rate, so every byte of the
    process group really crosses a slow link; the namespaces are gone when ``launch`` returns or
    raises.

    With ``strict_device`` each worker runs under
    :func:`~companion.comm.placement.strict_placement`: tensors made without ``device=`` land on
    the ``meta`` device and every collective checks that its tensors are on :func:`device`, so
    code that would hand a CPU tensor to NCCL fails on a CPU-only machine too.

    Returns ``[result of rank 0, result of rank 1, ...]``.

    Raises :class:`WorkerError` (with the rank and its traceback) as soon as one worker raises
    or dies without a result, and :class:`TimeoutError` after ``timeout_s`` seconds; in both
    cases every worker, and every process a worker started, is killed first.
    """
    _check_launch_args(fn, world_size, backend, timeout_s, threads_per_rank)
    if link is not None and not isinstance(link, ShapedLink):
        raise ValueError(f"link must be None or a comm.ShapedLink, got {link!r} "
                         "(a comm.Link is a model: pass it to comm.ModelledLink inside the worker)")
    if link is not None and backend != "gloo":
        raise ValueError(f"a ShapedLink throttles TCP, so it needs backend='gloo', got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend='nccl' needs CUDA GPUs and this machine has none: "
                         "use backend='gloo' (the CPU backend)")
    network = ShapedNetwork(link, world_size) if link is not None else None
    if network is not None:
        network.__enter__()  # raises PermissionError (naming ModelledLink) where it cannot be built
    ctx = mp.get_context("spawn")
    processes, conns, store = [], [], None
    try:
        store = _start_store()
        deadline = time.monotonic() + timeout_s
        with _ENV_LOCK:
            saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
            os.environ.update({k: str(threads_per_rank) for k in THREAD_ENV_VARS})
            try:
                for rank in range(world_size):
                    receiver, sender = ctx.Pipe(duplex=False)
                    proc = ctx.Process(
                        target=_worker_main,
                        args=(fn, rank, world_size, args, store.port, backend, threads_per_rank, sender,
                              os.getpid(), min(timeout_s, 300.0),
                              None if network is None else network.holder_pids[rank],
                              None if network is None else network.user_ns_pid, strict_device),
                        name=f"comm-rank-{rank}", daemon=True)
                    proc.start()
                    sender.close()
                    processes.append(proc)
                    conns.append(receiver)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return _collect(processes, conns, deadline, timeout_s)
    finally:
        _kill(processes)
        for conn in conns:
            conn.close()
        del store
        if network is not None:
            network.close()


def _collect(processes, conns, deadline, timeout_s) -> list:
    world_size = len(processes)
    results: dict[int, object] = {}
    errors: list[tuple[int, float, int, str]] = []  # (priority, time, rank, text)
    open_conns = {conns[r]: r for r in range(world_size)}
    sentinels = {processes[r].sentinel: r for r in range(world_size)}
    exited: set[int] = set()

    def handle(message) -> None:
        kind, rank, payload = message
        if kind == "out":
            channel, text = payload
            stream = sys.stdout if channel == "stdout" else sys.stderr
            stream.write("".join(f"[rank {rank}] {line}" for line in text.splitlines(keepends=True)))
            stream.flush()
        elif kind == "result":
            results[rank] = payload
        else:
            errors.append((1, payload[0], rank, payload[1]))

    def drain(conn) -> None:
        rank = open_conns[conn]
        try:
            while conn.poll():
                handle(pickle.loads(conn.recv_bytes()))
        except (EOFError, OSError):
            del open_conns[conn]
            return
        if rank in exited and not conn.poll():
            del open_conns[conn]

    def poll(timeout: float) -> None:
        ready = wait_for_ready(list(open_conns) + list(sentinels), timeout=timeout)
        for obj in ready:
            if obj in open_conns:
                drain(obj)
        for obj in ready:
            if obj in sentinels:
                rank = sentinels.pop(obj)
                exited.add(rank)
                if conns[rank] in open_conns:
                    drain(conns[rank])
                if rank not in results and not any(r == rank for _, _, r, _ in errors):
                    processes[rank].join(timeout=1.0)
                    code = processes[rank].exitcode
                    # a silent death ranks first: the other ranks' errors are usually its echoes
                    errors.append((0, time.time(), rank, f"worker exited with code {code} without a result"))

    while len(results) < world_size:
        if errors:
            # let simultaneous failures arrive, then blame the root cause
            settle = time.monotonic() + 0.3
            while time.monotonic() < settle and (open_conns or sentinels):
                poll(0.05)
            _, _, rank, text = min(errors)
            raise WorkerError(rank, text)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            missing = sorted(set(range(world_size)) - set(results))
            raise TimeoutError(f"ranks {missing} did not finish within timeout_s={timeout_s}; all workers killed")
        poll(min(remaining, 0.5))
    return [results[r] for r in range(world_size)]


def run_under_torchrun(fn, *args, out: str | None = None, threads_per_rank: int | None = 1):
    """Run ``fn(rank, world_size, *args)`` in a process started by ``torchrun`` and return its result.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the environment torchrun sets; uses
    NCCL (one GPU per local rank) when CUDA is available and gloo otherwise, and limits torch to
    ``threads_per_rank`` threads as :func:`launch` does (``None`` leaves it alone). With ``out``,
    rank 0 gathers every rank's result (``dist.gather_object``) and writes them, in rank order,
    as JSON to ``out`` (:func:`~companion.comm.results.write_results`), so a torchrun run can be
    compared with :func:`launch`. For a real two-node run, on each of the two machines::

        torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d \\
                 --rdzv-endpoint HOST:29500 --rdzv-id overlap \\
                 -m companion.comm.torchrun --job companion.diloco.runner:torchrun_job \\
                 --out diloco.json

    (:mod:`companion.comm.torchrun` names the worker through a job factory.)
    """
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if var not in os.environ:
            raise RuntimeError(f"{var} is not set: run_under_torchrun must be called in a process started by "
                               "torchrun (on one machine, use comm.launch instead)")
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and int(os.environ["LOCAL_RANK"]) >= torch.cuda.device_count():
        raise RuntimeError(f"LOCAL_RANK={os.environ['LOCAL_RANK']} but this machine has "
                           f"{torch.cuda.device_count()} GPU(s): start torchrun with "
                           "--nproc-per-node at most the number of GPUs")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    if threads_per_rank is not None:
        torch.set_num_threads(threads_per_rank)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        result = fn(rank, world_size, *args)
        if out is not None:
            from .results import write_results

            gathered = [None] * world_size if rank == 0 else None
            dist.gather_object(result, gathered, dst=0)
            if rank == 0:
                write_results(out, gathered, how=f"torchrun, {world_size} ranks, {backend}")
        return result
    finally:
        dist.destroy_process_group()
