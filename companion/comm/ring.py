"""Ring reduce-scatter and all-gather written with point-to-point ``isend``/``irecv``.

With ``p`` ranks and a tensor cut into ``p`` chunks along its first dimension, both collectives
take ``p - 1`` steps; in each step every rank sends one chunk to its right neighbour and
receives one from its left neighbour, so every link carries ``n / p`` bytes per step.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def _peers(group) -> list[int]:
    """Global ranks of the group's members, in group-rank order."""
    p = dist.get_world_size(group)
    return list(range(p)) if group is None else [dist.get_global_rank(group, i) for i in range(p)]


def _exchange(send: torch.Tensor, recv: torch.Tensor, right: int, left: int, group, tag: int) -> None:
    # One batch: NCCL runs a send and a receive with the same peer (p = 2) on one stream, so
    # issued one by one they could wait for each other; gloo runs the batch as two calls.
    ops = [dist.P2POp(dist.isend, send, right, group, tag), dist.P2POp(dist.irecv, recv, left, group, tag)]
    for work in dist.batch_isend_irecv(ops):
        work.wait()


def ring_reduce_scatter_into(output: torch.Tensor, tensor: torch.Tensor, group=None, tag: int = 0) -> None:
    """Ring reduce-scatter of ``tensor`` ``(p * k, ...)`` into ``output`` ``(k, ...)`` (this rank's chunk)."""
    p, rank = dist.get_world_size(group), dist.get_rank(group)
    if tensor.dim() == 0 or tensor.shape[0] % p != 0:
        raise ValueError(f"tensor's first dimension must be divisible by world size {p}, got {tuple(tensor.shape)}")
    chunks = tensor.contiguous().chunk(p, dim=0)
    if p == 1:
        output.copy_(chunks[0])
        return
    peers = _peers(group)
    right, left = peers[(rank + 1) % p], peers[(rank - 1) % p]
    # Step s: send the running sum of chunk (rank - s - 1), receive the partial sum of chunk
    # (rank - s - 2) and add our own share to it; after p - 1 steps we hold chunk `rank` in full.
    outgoing = chunks[(rank - 1) % p].clone()
    incoming = torch.empty_like(outgoing)
    for step in range(p - 1):
        _exchange(outgoing, incoming, right, left, group, tag)
        outgoing = incoming + chunks[(rank - step - 2) % p]
    output.copy_(outgoing)


def ring_reduce_scatter(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Sum ``tensor`` ``(p * k, ...)`` over the ranks of ``group``; return this rank's chunk ``(k, ...)``.

    Chunk ``i`` (rows ``i k`` to ``(i + 1) k``) of the sum ends on group rank ``i``.
    """
    p = dist.get_world_size(group)
    if tensor.dim() == 0 or tensor.shape[0] % p != 0:
        raise ValueError(f"tensor's first dimension must be divisible by world size {p}, got {tuple(tensor.shape)}")
    output = torch.empty((tensor.shape[0] // p, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    ring_reduce_scatter_into(output, tensor, group)
    return output


def ring_all_gather(chunk: torch.Tensor, group=None, tag: int = 0) -> torch.Tensor:
    """Concatenate every rank's ``chunk`` ``(k, ...)`` along dim 0, in group-rank order: ``(p * k, ...)``."""
    p, rank = dist.get_world_size(group), dist.get_rank(group)
    if chunk.dim() == 0:
        raise ValueError("chunk must have at least one dimension")
    out = torch.empty((p * chunk.shape[0], *chunk.shape[1:]), dtype=chunk.dtype, device=chunk.device)
    parts = list(out.chunk(p, dim=0))
    parts[rank].copy_(chunk)
    if p == 1:
        return out
    peers = _peers(group)
    right, left = peers[(rank + 1) % p], peers[(rank - 1) % p]
    incoming = torch.empty_like(chunk.contiguous())
    # Step s: pass on chunk (rank - s), which we received in the previous step (or own, at s = 0).
    for step in range(p - 1):
        _exchange(parts[(rank - step) % p].contiguous(), incoming, right, left, group, tag)
        parts[(rank - step - 1) % p].copy_(incoming)
    return out
