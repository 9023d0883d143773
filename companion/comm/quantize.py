"""Low-bit payloads for communication: blockwise absmax codes packed into ``uint8``.

A tensor is flattened and cut into blocks of ``block_size`` values. Each block keeps one fp32
scale ``s = max|x| / q`` with ``q = 2**(bits - 1) - 1`` and integer codes
``round(x / s)`` in ``[-q, q]``, stored offset by ``2**(bits - 1)`` as unsigned integers;
4-bit codes are packed two per byte. Dequantising multiplies back, so every value comes back
within ``s / 2`` of where it started. Backends without low-bit float dtypes (gloo) can
still move these payloads, but cannot add them: :func:`quantized_all_reduce` all-gathers codes
and scales and adds the dequantised contributions in fp32.

``fmt="e3m0"`` swaps the integer codes for Streaming DiLoCo's four-bit float (1 sign, 3
exponent, 0 mantissa bits; :mod:`companion.comm.e3m0`, scale ``max|x|`` per block): the same
bytes, a different grid of values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from companion.comm import e3m0
from companion.comm.blocks import to_blocks

SUPPORTED_BITS = (4, 8)
#: Number formats of the codes: blockwise absmax integers, or E3M0 floats (4 bits only).
FORMATS = ("int", "e3m0")


@dataclass(frozen=True)
class QuantizedTensor:
    """Codes and scales of a quantised tensor.

    ``codes``: ``uint8``, ``n_blocks * block_size * bits / 8`` bytes; ``scales``: fp32,
    ``(n_blocks,)``; ``shape``: the original shape; ``bits`` in (4, 8); ``block_size`` values
    per scale; ``fmt`` in :data:`FORMATS`.
    """

    codes: torch.Tensor
    scales: torch.Tensor
    shape: tuple
    bits: int
    block_size: int
    fmt: str = "int"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the payload: codes plus fp32 scales."""
        return self.codes.numel() * self.codes.element_size() + self.scales.numel() * self.scales.element_size()


def _check(bits: int, block_size: int, fmt: str = "int") -> None:
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if fmt == "e3m0" and bits != 4:
        raise ValueError(f"E3M0 is a 4-bit format: use bits=4 with fmt='e3m0', got bits={bits!r}")
    if bits not in SUPPORTED_BITS:
        raise ValueError(f"bits must be one of {SUPPORTED_BITS}, got {bits!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2 or block_size % 2:
        raise ValueError(f"block_size must be an even integer >= 2, got {block_size!r}")


def quantize(x: torch.Tensor, bits: int = 4, block_size: int = 64, fmt: str = "int") -> QuantizedTensor:
    """Quantise a float tensor (fp32, fp16 or bf16; any shape) to ``bits``-bit blockwise codes.

    ``fmt="int"``: absmax integers (this module); ``fmt="e3m0"``: :func:`companion.comm.e3m0.encode`.
    """
    _check(bits, block_size, fmt)
    if fmt == "e3m0":
        codes, scales = e3m0.encode(x, block_size)
        return QuantizedTensor(codes, scales, tuple(x.shape), bits, block_size, fmt)
    blocks = to_blocks(x, block_size, fmt="blockwise-integer")
    q = 2 ** (bits - 1) - 1
    scales = blocks.abs().amax(dim=1) / q
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    codes = (torch.round(blocks / safe[:, None]).clamp_(-q, q) + (q + 1)).to(torch.uint8).reshape(-1)
    if bits == 4:
        codes = codes[0::2] | (codes[1::2] << 4)
    return QuantizedTensor(codes.contiguous(), scales.contiguous(), tuple(x.shape), bits, block_size)


def dequantize(q: QuantizedTensor) -> torch.Tensor:
    """The fp32 tensor (original shape) that ``q``'s codes and scales stand for."""
    _check(q.bits, q.block_size, q.fmt)
    if q.fmt == "e3m0":
        return e3m0.decode(q.codes, q.scales, q.shape, q.block_size)
    codes = q.codes
    if q.bits == 4:
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=1).reshape(-1)
    offset = 2 ** (q.bits - 1)
    values = (codes.to(torch.float32) - offset).view(-1, q.block_size) * q.scales[:, None]
    return values.reshape(-1)[: q.numel].reshape(q.shape)


def quantized_all_reduce(x: torch.Tensor, bits: int = 4, net=None, block_size: int = 64,
                         group=None, fmt: str = "int") -> torch.Tensor:
    """Sum of ``x`` over ranks, sending ``bits``-bit codes: all-gather codes and scales, add in fp32.

    ``net`` (a :class:`~companion.comm.ModelledLink`) times the two all-gathers on its link;
    without it they go straight to ``torch.distributed``. Returns an fp32 tensor of ``x``'s shape.
    Every rank must pass a tensor of the same shape.
    """
    q = quantize(x, bits=bits, block_size=block_size, fmt=fmt)
    p = dist.get_world_size(group if net is None else net.group)
    codes = [torch.empty_like(q.codes) for _ in range(p)]
    scales = [torch.empty_like(q.scales) for _ in range(p)]
    if net is None:
        dist.all_gather(codes, q.codes, group=group)
        dist.all_gather(scales, q.scales, group=group)
    else:
        net.all_gather(codes, q.codes, name=f"all_gather codes ({bits}-bit)")
        net.all_gather(scales, q.scales, name="all_gather scales")
    total = torch.zeros(q.shape, dtype=torch.float32, device=x.device)
    for c, s in zip(codes, scales):
        total += dequantize(QuantizedTensor(c, s, q.shape, bits, block_size, fmt))
    return total
