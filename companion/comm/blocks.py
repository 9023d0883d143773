"""Cutting a float tensor into zero-padded blocks: the layout both four-bit formats share.

:mod:`companion.comm.quantize` (absmax integers) and :mod:`companion.comm.e3m0` (E3M0 floats)
both keep one fp32 scale per block of ``block_size`` values; this module does the checking and
the cutting once for both.
"""

from __future__ import annotations

import math

import torch

#: The dtypes a payload may have before it is encoded.
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def to_blocks(x: torch.Tensor, block_size: int, *, fmt: str) -> torch.Tensor:
    """``x`` (any shape; fp32, fp16 or bf16) flattened to fp32 blocks ``(n_blocks, block_size)``.

    ``n_blocks = max(1, ceil(x.numel() / block_size))``; the last block is padded with zeros.
    ``fmt`` names the format in error messages. Raises ``ValueError`` for a non-tensor, another
    dtype, a ``block_size`` that is not an even integer >= 2 (two codes share a byte), and NaN or
    infinite values, which have no code.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(f"x must be float32, float16 or bfloat16, got {x.dtype}; "
                         f"cast it first ({fmt} encodes floats)")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2 or block_size % 2:
        raise ValueError(f"block_size must be an even integer >= 2 (two codes per byte), got {block_size!r}")
    flat = x.detach().reshape(-1).to(torch.float32)
    if not torch.isfinite(flat).all():
        raise ValueError(f"x contains NaN or infinite values, which have no {fmt} code")
    n_blocks = max(1, math.ceil(flat.numel() / block_size))
    padded = torch.zeros(n_blocks * block_size, dtype=torch.float32, device=flat.device)
    padded[: flat.numel()] = flat
    return padded.view(n_blocks, block_size)
