"""E3M0: a four-bit float with 1 sign bit, 3 exponent bits and no mantissa, with a block scale.

Streaming DiLoCo (Douillard et al., 2025, §2.4) sends its outer gradients as E3M0 floats and
accumulates them in fp32; it names the bit layout and nothing else. The rest is **our choice**:

- **Values.** A code is ``sign << 3 | e`` with ``e`` in ``0..7``. ``e = 0`` is zero (``+0`` and
  ``-0``); ``e = 1..7`` is ``±2**(e - 7)`` times the block's scale, so a block can hold ``0`` and
  the magnitudes ``2**-6, ..., 2**-1, 1`` (seven octaves) times its scale. No infinities, no NaN.
- **Scale.** The flattened tensor is cut into blocks of ``block_size`` values (the last one padded
  with zeros); each block keeps one fp32 scale ``s = max|x|``, so its largest magnitude is the
  largest code, exactly. An all-zero block has ``s = 0`` and decodes to zeros.
- **Rounding.** Round to the nearest *value* (not the nearest exponent in the log domain), ties
  to the larger magnitude: between ``2**k`` and ``2**(k + 1)`` the boundary is ``1.5 * 2**k``,
  and between zero and the smallest magnitude ``2**-6`` it is ``2**-7``. The workers *add* what
  they receive, so what matters is the absolute error of each value, which nearest-value rounding
  minimises; log-domain rounding (boundary ``sqrt(2) * 2**k``) minimises the relative error
  instead and sends values in ``(1.41, 1.5) * 2**k`` up, an error up to ``0.59 * 2**k``
  instead of at most ``0.5 * 2**k``.

Codes are packed two per ``uint8`` (low nibble first), like :mod:`companion.comm.quantize`'s
integer codes, so a block of ``B`` values costs ``B / 2`` bytes of codes plus a 4-byte scale.
"""

from __future__ import annotations

import math

import torch

from companion.comm.blocks import to_blocks

#: Exponent bits, and the code that stands for zero (exponent field 0).
EXPONENT_BITS = 3
MAX_EXPONENT_FIELD = 2**EXPONENT_BITS - 1  # 7: the magnitude 1 (times the scale)
#: Octaves below the largest magnitude that a nonzero code reaches: 2**-6 .. 2**0.
MIN_POWER = 1 - MAX_EXPONENT_FIELD  # -6


def code_values() -> torch.Tensor:
    """The value (for a unit scale) of each of the 16 codes, indexed by code: ``(16,)`` fp32.

    Codes 0 and 8 are ``+0`` and ``-0``; code ``e`` (1..7) is ``2**(e - 7)``, code ``8 + e`` its
    negative.
    """
    e = torch.arange(8, dtype=torch.float32)
    mag = torch.where(e > 0, torch.exp2(e - MAX_EXPONENT_FIELD), torch.zeros(()))
    return torch.cat([mag, -mag])


def encode(x: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """E3M0 codes and block scales of ``x`` (any shape; fp32, fp16 or bf16).

    Returns ``(codes, scales)``: ``codes`` ``uint8`` of ``n_blocks * block_size / 2`` bytes (two
    codes per byte, low nibble first), ``scales`` fp32 ``(n_blocks,)`` in the units of ``x``,
    with ``n_blocks = ceil(x.numel() / block_size)`` (at least 1). Raises ``ValueError`` for
    NaN or infinite values, which have no code.
    """
    blocks = to_blocks(x, block_size, fmt="E3M0")
    scales = blocks.abs().amax(dim=1)
    safe = torch.where(scales > 0, scales, torch.ones_like(scales))
    m = blocks.abs() / safe[:, None]  # in [0, 1]; exactly 1 at the block's largest magnitude
    mant, exp = torch.frexp(m)  # m = mant * 2**exp, mant in [0.5, 1) (0 for m = 0)
    # nearest power of two: 2**(exp - 1), or 2**exp once m >= 1.5 * 2**(exp - 1)
    power = exp.to(torch.int32) - 1 + (mant >= 0.75).to(torch.int32)
    field = (power + MAX_EXPONENT_FIELD).clamp(min=1, max=MAX_EXPONENT_FIELD)
    # below the smallest magnitude 2**-6: zero under half of it, else the smallest code
    field = torch.where(m >= 2.0 ** (MIN_POWER - 1), field, torch.zeros_like(field))
    codes = (field | (torch.signbit(blocks).to(torch.int32) << EXPONENT_BITS)).to(torch.uint8).reshape(-1)
    packed = codes[0::2] | (codes[1::2] << 4)
    return packed.contiguous(), scales.contiguous()


def unpack(codes: torch.Tensor) -> torch.Tensor:
    """The 4-bit codes (``uint8`` in ``0..15``, two per input byte, low nibble first)."""
    return torch.stack([codes & 0x0F, codes >> 4], dim=1).reshape(-1)


def decode(codes: torch.Tensor, scales: torch.Tensor, shape: tuple, block_size: int = 64) -> torch.Tensor:
    """The fp32 tensor of ``shape`` that packed ``codes`` and fp32 ``scales`` (one per block) stand for."""
    if codes.dtype != torch.uint8:
        raise ValueError(f"codes must be uint8 (two codes per byte), got {codes.dtype}")
    numel = math.prod(shape)
    n_blocks = scales.numel()
    if codes.numel() * 2 != n_blocks * block_size or numel > n_blocks * block_size:
        raise ValueError(f"{codes.numel()} code bytes and {n_blocks} scales do not fit blocks of "
                         f"{block_size} for shape {tuple(shape)}")
    table = code_values().to(codes.device)
    values = table[unpack(codes).long()].view(n_blocks, block_size) * scales.to(torch.float32)[:, None]
    return values.reshape(-1)[:numel].reshape(shape)
