"""Small worker functions that exercise the launcher and the collectives (used by tests and the chapter)."""

from __future__ import annotations

import os
import time

import torch
import torch.distributed as dist


def identify(rank: int, world_size: int, message: str = "") -> dict:
    """Report who this worker is: rank, world size, pid, thread count, and a sum over ranks."""
    if message:
        print(f"{message} from rank {rank}")
    from .devices import device

    t = torch.tensor([float(rank + 1)], device=device())
    dist.all_reduce(t)
    return {"rank": rank, "world_size": world_size, "pid": os.getpid(), "threads": torch.get_num_threads(),
            "sum": float(t.item()), "omp": os.environ.get("OMP_NUM_THREADS")}


def fail_on_rank(rank: int, world_size: int, bad_rank: int = 1) -> int:
    """Rank ``bad_rank`` raises; the others wait in a collective that never completes."""
    if rank == bad_rank:
        raise ArithmeticError(f"deliberate failure on rank {rank}")
    dist.barrier()
    return rank


def hang_on_rank(rank: int, world_size: int, stuck_rank: int = 1, child_pid_file: str = "") -> int:
    """Rank ``stuck_rank`` sleeps for an hour (after starting a grandchild process); the others block in a barrier."""
    if rank == stuck_rank:
        if child_pid_file:
            import subprocess
            import sys

            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
            with open(child_pid_file, "w") as f:
                f.write(str(child.pid))
        time.sleep(3600)
    dist.barrier()
    return rank


def exit_without_result(rank: int, world_size: int, bad_rank: int = 1) -> int:
    """Rank ``bad_rank`` dies abruptly (as if killed by the OOM killer)."""
    if rank == bad_rank:
        os._exit(7)
    dist.barrier()
    return rank


def ring_collectives(rank: int, world_size: int, rows_per_rank: int = 3, cols: int = 5, seed: int = 0) -> dict:
    """Run the hand-written ring collectives on seeded data and return their results with references."""
    from .devices import device
    from .ring import ring_all_gather, ring_reduce_scatter

    inputs = [torch.randn(world_size * rows_per_rank, cols, generator=torch.Generator().manual_seed(seed + r),
                          device="cpu").to(device()) for r in range(world_size)]
    mine = inputs[rank]
    chunk = ring_reduce_scatter(mine)
    gathered = ring_all_gather(chunk)
    reference = mine.clone()
    dist.all_reduce(reference)
    return {"chunk": chunk, "gathered": gathered, "reference": reference, "inputs_sum": sum(inputs)}


def _busy(seconds: float) -> None:
    """Spin the CPU for ``seconds`` of wall time."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def modelled_link_checks(rank: int, world_size: int, latency_s: float, bandwidth: float, numel: int) -> dict:
    """Exercise every ModelledLink operation; return measured times (s) relative to issue, values and bytes."""
    from .cost_model import Link
    from .devices import device
    from .modelled_link import ModelledLink
    from .quantize import quantized_all_reduce
    from .timeline import Timeline

    dev = device()
    link = Link(latency_s, bandwidth)
    tl = Timeline(rank)
    net = ModelledLink(link, timeline=tl)
    out: dict = {}
    net.barrier()
    tl.reset()
    # two back-to-back all-reduces share the link: the second finishes one cost later
    a = torch.full((numel,), float(rank + 1), device=dev)
    b = torch.full((numel,), 10.0 * (rank + 1), device=dev)
    t0 = time.perf_counter()
    wa = net.all_reduce(a, async_op=True)
    wb = net.all_reduce(b, async_op=True)
    out["issue_s"] = time.perf_counter() - t0
    out["t0_abs_s"] = t0  # perf_counter is one clock for every process of a machine (tests only)
    # the link aligns ranks at their last barrier exit, which the ranks leave apart
    out["epoch_abs_s"] = net._epoch
    wb.wait()
    out["second_late_s"] = time.perf_counter() - wb.done_s  # >= 0: wait() never returns early
    wa.wait()
    out["first_start_s"] = wa.start_s - t0
    out["first_start_abs_s"] = wa.start_s
    out["first_cost_s"] = wa.done_s - wa.start_s
    out["second_cost_s"] = wb.done_s - wb.start_s
    out["second_queued_s"] = wb.start_s - wa.done_s  # 0: the second waits for the link
    out["second_done_s"] = wb.done_s - t0
    out["a"], out["b"] = a[:3].clone(), b[:3].clone()
    out["bytes_after_allreduce"] = net.bytes_sent
    # a transfer issued after a compute block starts when issued: the link was idle
    net.barrier()
    with net.compute("idle-link"):
        _busy(0.02)
    t1 = time.perf_counter()
    net.all_reduce(torch.ones(numel, device=dev))
    out["sync_allreduce_s"] = time.perf_counter() - t1
    # all-gather, broadcast, reduce-scatter, point to point: values and times
    gathered = [torch.empty(4, device=dev) for _ in range(world_size)]
    t2 = time.perf_counter()
    net.all_gather(gathered, torch.full((4,), float(rank), device=dev))
    out["all_gather_s"] = time.perf_counter() - t2
    out["gathered"] = torch.stack(gathered)
    src = torch.arange(4, dtype=torch.float32, device=dev) if rank == 0 else torch.zeros(4, device=dev)
    net.broadcast(src, 0)
    out["broadcast"] = src
    inp = torch.arange(world_size * 6, dtype=torch.float32, device=dev).view(world_size * 2, 3) * (rank + 1)
    rs_out = torch.empty(2, 3, device=dev)
    t3 = time.perf_counter()
    net.reduce_scatter(rs_out, inp, async_op=True).wait()
    out["reduce_scatter_s"] = time.perf_counter() - t3
    out["reduce_scatter"] = rs_out
    peer = (rank + 1) % world_size
    msg = torch.full((numel,), float(rank), device=dev)
    got = torch.empty(numel, device=dev)
    t4 = time.perf_counter()
    hs = net.isend(msg, peer)
    hr = net.irecv(got, (rank - 1) % world_size)
    hs.wait()
    hr.wait()
    out["p2p_s"] = time.perf_counter() - t4
    out["p2p_value"] = float(got[0])
    out["bytes_sent"] = net.bytes_sent
    # quantised all-reduce through the link
    x = torch.randn(1000, generator=torch.Generator().manual_seed(rank), device="cpu").to(dev)
    out["quantized_sum"] = quantized_all_reduce(x, bits=8, net=net)
    out["exact_sum"] = sum(torch.randn(1000, generator=torch.Generator().manual_seed(r), device="cpu")
                           for r in range(world_size)).to(dev)
    # contention: 60 ms of compute while a 100 ms transfer is in flight, c = 0.5 -> +30 ms
    slow = ModelledLink(Link(0.1, bandwidth), timeline=tl, contention=0.5)
    slow.barrier()
    handle = slow.all_reduce(torch.ones(4, device=dev), async_op=True)
    t5 = time.perf_counter()
    with slow.compute("contended"):
        _busy(0.06)
        out["contended_body_s"] = time.perf_counter() - t5
    out["contended_s"] = time.perf_counter() - t5
    handle.wait()
    out["spans"] = tl.spans
    # bare: no modelled delay, the span still recorded
    bare_tl = Timeline(rank)
    bare = ModelledLink(None, timeline=bare_tl)
    t6 = time.perf_counter()
    bare.all_reduce(torch.ones(numel, device=dev))
    out["bare_s"] = time.perf_counter() - t6
    out["bare_spans"] = bare_tl.spans
    out["bare_bytes"] = bare.bytes_sent
    return out


def shaped_probe(rank: int, world_size: int, nbytes: int) -> dict:
    """Where this rank's traffic goes, and one timed all-reduce of ``nbytes`` (for the shaped-link tests)."""
    x = torch.full((nbytes // 4,), float(rank + 1))
    dist.barrier()
    t0 = time.perf_counter()
    dist.all_reduce(x)
    elapsed = time.perf_counter() - t0
    return {"netns": os.stat("/proc/self/ns/net").st_ino, "ifname": os.environ.get("GLOO_SOCKET_IFNAME"),
            "all_reduce_s": elapsed, "value": float(x[0])}


def reshaped_all_reduce(rank: int, world_size: int, nbytes: int, rate_gbit_s: float) -> tuple[float, float]:
    """Seconds of an all-reduce of ``nbytes`` at the launch's rate, then after this rank (and every
    other) reshapes its NIC to ``rate_gbit_s`` with a two-frame bucket (the reshaping tests)."""
    from .link_fit import time_once
    from .shaped_link import ShapedLink, reshape_own_link

    x = torch.zeros(nbytes // 4)
    dist.all_reduce(x)  # warm-up
    fast = min(time_once("all_reduce", rank, x) for _ in range(3))
    reshape_own_link(ShapedLink(rate_gbit_s, burst_bytes=2 * 1514))
    dist.barrier()
    return fast, min(time_once("all_reduce", rank, x) for _ in range(2))


def late_rank_stall(rank: int, world_size: int, late_rank: int, delay_s: float, latency_s: float,
                    bandwidth: float, numel: int) -> float:
    """Rank ``late_rank`` computes ``delay_s`` before an all-reduce on a modelled link; return when each rank's ended."""
    from .cost_model import Link
    from .modelled_link import ModelledLink

    net = ModelledLink(Link(latency_s, bandwidth))
    x = torch.ones(numel)
    net.barrier()
    t0 = time.perf_counter()
    if rank == late_rank:
        _busy(delay_s)
    net.all_reduce(x)
    return time.perf_counter() - t0


def placed_on_device(rank: int, world_size: int) -> list[float]:
    """An all-reduce of a tensor made on :func:`~companion.comm.device`: passes the placement check."""
    from .devices import device

    x = torch.full((3,), float(rank + 1), device=device())
    dist.all_reduce(x)
    return x.tolist()


def forgets_the_device(rank: int, world_size: int) -> list[float]:
    """An all-reduce of a tensor made without ``device=``: the bug the placement check catches."""
    x = torch.zeros(3)
    dist.all_reduce(x)
    return x.tolist()


def forgets_the_device_in_p2p(rank: int, world_size: int) -> list[float]:
    """A batched send/receive whose receive buffer was made without ``device=`` (two ranks)."""
    from .devices import device

    buf = torch.ones(2, device=device())
    other = torch.empty(2)
    peer = 1 - rank
    ops = [dist.P2POp(dist.isend, buf, peer), dist.P2POp(dist.irecv, other, peer)]
    for work in dist.batch_isend_irecv(ops):
        work.wait()
    return other.tolist()


def seeded_without_device(rank: int, world_size: int) -> list[float]:
    """A seeded ``randn`` without ``device=`` (a CPU generator does not pin the device): caught too."""
    x = torch.randn(3, generator=torch.Generator().manual_seed(rank))
    dist.all_reduce(x)
    return x.tolist()


def clock_offsets(rank: int, world_size: int, rounds: int = 8) -> tuple[float, float]:
    """This rank's estimate of its left neighbour's clock offset and its error bound (seconds)."""
    from .clock import left_clock_offset

    return left_clock_offset(rounds)
