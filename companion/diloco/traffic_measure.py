"""Count the bytes real gloo collectives are handed, for the three schemes of :mod:`~companion.diloco.traffic`.

:func:`traffic_worker` runs on every rank of :func:`companion.comm.launch`. For each scheme it
runs the collectives twice: once through ``torch.distributed`` (gloo's own algorithms), counting
the ``nbytes`` of the tensors handed to ``all_gather`` / ``all_reduce`` at the call site (the
payload a rank contributes), and once as a ring built from point-to-point messages
(:mod:`companion.comm.ring`), counting the ``nbytes`` of every tensor handed to ``isend``: the
bytes the rank really puts on its link. Both runs must give the same sum.
"""

from __future__ import annotations

import contextlib
from collections import Counter

import torch
import torch.distributed as dist


class ByteCounter:
    """Per operation, bytes of the tensors a rank hands to collectives and to ``isend``."""

    def __init__(self) -> None:
        self.handed: Counter = Counter()  # {op: bytes handed to dist.<op>}
        self.sent = 0  # bytes handed to isend (inside the ring collectives)

    def all_gather(self, out: list, tensor: torch.Tensor) -> None:
        self.handed["all_gather"] += tensor.nbytes
        dist.all_gather(out, tensor)

    def all_reduce(self, tensor: torch.Tensor) -> None:
        self.handed["all_reduce"] += tensor.nbytes
        dist.all_reduce(tensor)

    @contextlib.contextmanager
    def counting_sends(self):
        """Count the bytes of every ``isend`` in ``dist.batch_isend_irecv`` (the ring's only path)."""
        original = dist.batch_isend_irecv

        def counted(ops):
            self.sent += sum(op.tensor.nbytes for op in ops if op.op is dist.isend)
            return original(ops)

        dist.batch_isend_irecv = counted
        try:
            yield
        finally:
            dist.batch_isend_irecv = original


def _gathered_sum(codes: list, scales: list, numel: int, block_size: int) -> torch.Tensor:
    from companion import comm

    total = torch.zeros(numel)
    for c, s in zip(codes, scales):  # fp32 accumulation, rank order
        total += comm.dequantize(comm.QuantizedTensor(c, s, (numel,), 4, block_size, "e3m0"))
    return total


def traffic_worker(rank: int, world_size: int, n: int, block_size: int = 64) -> dict:
    """On every rank: the three schemes on an ``n``-value vector; bytes handed and sent per scheme."""
    from companion import comm
    from companion.comm import ring

    M = world_size
    x = torch.randn(n, generator=torch.Generator().manual_seed(rank))
    out = {}

    # (a) all-gather of every rank's 4-bit payload
    q = comm.quantize(x, bits=4, block_size=block_size, fmt="e3m0")
    c = ByteCounter()
    codes, scales = [torch.empty_like(q.codes) for _ in range(M)], [torch.empty_like(q.scales) for _ in range(M)]
    c.all_gather(codes, q.codes)
    c.all_gather(scales, q.scales)
    with c.counting_sends():
        ring_codes = ring.ring_all_gather(q.codes).chunk(M)
        ring_scales = ring.ring_all_gather(q.scales).chunk(M)
    same = torch.equal(_gathered_sum(codes, scales, n, block_size),
                       _gathered_sum(ring_codes, ring_scales, n, block_size))
    out["all_gather_4bit"] = dict(handed=dict(c.handed), sent=c.sent, same_result=same)

    # (b) fp32 all-reduce; the ring version is a reduce-scatter then an all-gather
    c = ByteCounter()
    buf = x.clone()
    c.all_reduce(buf)
    with c.counting_sends():
        ring_sum = ring.ring_all_gather(ring.ring_reduce_scatter(x.clone()))
    same = torch.allclose(buf, ring_sum, atol=1e-5, rtol=0)
    out["all_reduce_fp32"] = dict(handed=dict(c.handed), sent=c.sent, same_result=same)

    # (c) fp32 reduce-scatter, then a 4-bit all-gather of the summed chunks
    c = ByteCounter()
    with c.counting_sends():
        chunk = ring.ring_reduce_scatter(x.clone())
        c.handed["reduce_scatter"] += x.nbytes
        qc = comm.quantize(chunk, bits=4, block_size=block_size, fmt="e3m0")
        c.handed["all_gather"] += qc.codes.nbytes + qc.scales.nbytes
        all_codes = ring.ring_all_gather(qc.codes).chunk(M)
        all_scales = ring.ring_all_gather(qc.scales).chunk(M)
    k = n // M
    parts = [comm.dequantize(comm.QuantizedTensor(cc, ss, (k,), 4, block_size, "e3m0"))
             for cc, ss in zip(all_codes, all_scales)]
    # everyone holds the quantised sum: within E3M0's rounding of gloo's fp32 sum, |v| / 3 above
    # the smallest code (at worst 1.5 * 2**k -> 2**k) and half the smallest code below it
    block_max = buf.view(-1, block_size).abs().amax(1).repeat_interleave(block_size)
    bound = buf.abs() / 3 + block_max * 2.0**-7 + 1e-5
    same = bool(((torch.cat(parts) - buf).abs() <= bound).all())
    out["reduce_scatter_fp32_all_gather_4bit"] = dict(handed=dict(c.handed), sent=c.sent, same_result=same)
    return out


def measure(world_sizes=(2, 4), n: int = 4096, block_size: int = 64, timeout_s: float = 120.0) -> list[dict]:
    """Launch :func:`traffic_worker` at each ``M``; rows ``{M, n, scheme, rank, handed, sent, same_result}``."""
    from companion import comm

    rows = []
    for M in world_sizes:
        per_rank = comm.launch(traffic_worker, M, n, block_size, timeout_s=timeout_s, threads_per_rank=1)
        for rank, res in enumerate(per_rank):
            for scheme, r in res.items():
                rows.append(dict(M=M, n=n, block_size=block_size, scheme=scheme, rank=rank, **r))
    return rows
