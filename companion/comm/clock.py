"""Clock offsets between ring neighbours, estimated explicitly (never assumed to be zero).

``time.perf_counter()`` is one clock for every process of one machine, but the clocks of two
machines have unrelated origins, so a timestamp read on one rank means nothing on another.
Where a rank must turn a neighbour's time into its own, it first estimates the offset by
ping-pong (Cristian's method): it notes ``t0``, the neighbour answers with its clock ``t1`` as
soon as the ping arrives, and the answer arrives at ``t3``. If both legs take as long,
``t1 = (t0 + t3) / 2 + offset``; the round trip with the shortest ``t3 - t0`` is the least
disturbed, and its error is at most half of that round trip.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .devices import device

#: Tags of the ping and the answer (gloo matches by tag; NCCL by order, which is the same here).
_PING_TAG, _ANSWER_TAG = 7_000_001, 7_000_002


def _exchange(send: torch.Tensor, dst: int, recv: torch.Tensor, src: int, tag: int) -> None:
    ops = [dist.P2POp(dist.isend, send, dst, tag=tag), dist.P2POp(dist.irecv, recv, src, tag=tag)]
    for work in dist.batch_isend_irecv(ops):
        work.wait()
    float(recv[0])  # the value is here (a GPU's stream is waited for)


def left_clock_offset(rounds: int = 32) -> tuple[float, float]:
    """``(offset_s, error_s)`` of the left neighbour's clock: its time minus this rank's.

    A time ``t`` read on rank ``rank - 1`` is ``t - offset_s`` on this rank's clock, to within
    ``error_s`` (half the shortest round trip). Every rank of the world must call it together;
    each is answered by its left neighbour and answers its right one. One rank: ``(0.0, 0.0)``.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    p, rank = dist.get_world_size(), dist.get_rank()
    if p == 1:
        return 0.0, 0.0
    left, right = (rank - 1) % p, (rank + 1) % p
    dev = device()
    ping, got_ping = torch.zeros(1, dtype=torch.float64, device=dev), torch.zeros(1, dtype=torch.float64, device=dev)
    answer, got_answer = torch.zeros_like(ping), torch.zeros_like(ping)
    best_rtt, best_offset = float("inf"), 0.0
    dist.barrier()
    for _ in range(rounds):
        t0 = time.perf_counter()
        _exchange(ping, left, got_ping, right, _PING_TAG)  # ping the left, take the right's ping
        answer.fill_(time.perf_counter())
        _exchange(answer, right, got_answer, left, _ANSWER_TAG)  # answer the right, hear the left
        t3 = time.perf_counter()
        if t3 - t0 < best_rtt:
            best_rtt, best_offset = t3 - t0, float(got_answer[0]) - 0.5 * (t0 + t3)
    return best_offset, 0.5 * best_rtt
