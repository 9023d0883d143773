"""How a worker sums its outer gradient with the other workers' (the wire).

A reducer's ``launch(flat, bits=..., name=...)`` starts summing a private fp32 vector over all
workers and returns a :class:`Pending` at once; ``Pending.wait()`` returns the fp32 sum. With
``bits`` set, each worker sends its vector quantised by :func:`companion.comm.quantize` (codes
packed in ``uint8`` plus fp32 block scales) and the received contributions are dequantised and
added in fp32, rank by rank, as Streaming DiLoCo prescribes (quantise what is sent, accumulate in
full precision).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import torch

#: Values per fp32 scale in quantised payloads (comm's default block size).
QUANT_BLOCK_SIZE = 64


@dataclass
class Pending:
    """A sum in flight. ``nbytes``: payload bytes this worker sent; ``wait()`` -> fp32 sum."""

    _wait: Callable[[], torch.Tensor]
    nbytes: int

    def wait(self) -> torch.Tensor:
        return self._wait()


def payload_nbytes(numel: int, bits: int | None, fmt: str = "int") -> int:
    """Bytes a worker sends for ``numel`` values: ``4 numel`` in fp32, else codes + fp32 scales."""
    if bits is None:
        return 4 * numel
    from companion import comm

    # a size, not a payload: quantise zeros on the host
    zeros = torch.zeros(numel, device="cpu")
    return comm.quantize(zeros, bits=bits, block_size=QUANT_BLOCK_SIZE, fmt=fmt).nbytes


def roundtrip(flat: torch.Tensor, bits: int | None, fmt: str = "int") -> torch.Tensor:
    """What the other workers receive of ``flat``: itself in fp32, or its quantise-dequantise."""
    if bits is None:
        return flat.to(torch.float32)
    from companion import comm

    return comm.dequantize(comm.quantize(flat, bits=bits, block_size=QUANT_BLOCK_SIZE, fmt=fmt))


class LocalReducer:
    """A world of one worker: the sum is the worker's own (possibly quantised) vector."""

    world_size = 1

    def launch(self, flat: torch.Tensor, *, bits: int | None = None, fmt: str = "int",
               name: str = "sync") -> Pending:
        value = roundtrip(flat, bits, fmt)
        return Pending(lambda: value, payload_nbytes(flat.numel(), bits, fmt))


class LinkReducer:
    """Sums over the process group through a :class:`companion.comm.ModelledLink` (timed, recorded).

    fp32 payloads use one asynchronous all-reduce; quantised payloads use two asynchronous
    all-gathers (codes, scales), since gloo cannot add 4-bit codes.
    """

    def __init__(self, net):
        self.net = net
        self.world_size = net.world_size
        #: Per sync, seconds the worker waited for the *modelled link* (modelled completion minus
        #: the time ``wait()`` was called, clipped at 0). Unlike the recorded comm spans, this
        #: excludes waiting for a slower peer, so it measures what overlap can hide.
        self.link_waits_s: list[float] = []

    def _waited(self, called_s: float, *transfers) -> None:
        # waiting for the link only: from the call, or from when the last worker had issued the
        # sync if that was later (before then the wait is for the other worker, not the link)
        ready = max(t.ready_s for t in transfers)
        self.link_waits_s.append(max(0.0, max(t.done_s for t in transfers) - max(called_s, ready)))

    def launch(self, flat: torch.Tensor, *, bits: int | None = None, fmt: str = "int",
               name: str = "sync") -> Pending:
        """Start the sum; the returned ``Pending.nbytes`` is counted from the tensors handed to
        the collectives here (``Tensor.nbytes``), not from a formula."""
        from companion import comm

        if bits is None:
            buf = flat.to(torch.float32).clone()  # the collective owns this private buffer
            work = self.net.all_reduce(buf, async_op=True, name=name)

            def wait_fp32() -> torch.Tensor:
                called = time.perf_counter()
                work.wait()
                self._waited(called, work)
                return buf

            return Pending(wait_fp32, buf.nbytes)

        q = comm.quantize(flat, bits=bits, block_size=QUANT_BLOCK_SIZE, fmt=fmt)
        codes = [torch.empty_like(q.codes) for _ in range(self.world_size)]
        scales = [torch.empty_like(q.scales) for _ in range(self.world_size)]
        w_codes = self.net.all_gather(codes, q.codes, async_op=True, name=f"{name} ({bits}-bit codes)")
        w_scales = self.net.all_gather(scales, q.scales, async_op=True, name=f"{name} (scales)")

        def wait_quantised() -> torch.Tensor:
            called = time.perf_counter()
            w_codes.wait()
            w_scales.wait()
            self._waited(called, w_codes, w_scales)
            total = torch.zeros(q.shape, dtype=torch.float32, device=flat.device)
            for c, s in zip(codes, scales):  # fp32 accumulation, rank order
                total += comm.dequantize(comm.QuantizedTensor(c, s, q.shape, bits, QUANT_BLOCK_SIZE, fmt))
            return total

        return Pending(wait_quantised, q.codes.nbytes + q.scales.nbytes)
