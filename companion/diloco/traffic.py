"""Bytes one rank sends to sum an ``n``-value outer gradient over ``M`` workers, three ways.

- ``"all_gather_4bit"``: every rank quantises its own vector to 4-bit codes with fp32 block
  scales and all-gathers them (ring): it sends its payload and passes on ``M - 2`` others',
  ``(M - 1) c(n)`` bytes, with ``c(n) = ceil(n / B) (B / 2 + 4)`` the payload of ``n`` values in
  blocks of ``B``. Everyone dequantises and adds in fp32 (Streaming DiLoCo's recipe).
- ``"all_reduce_fp32"``: a ring all-reduce of fp32, ``2 (M - 1) / M * 4 n`` bytes (a
  reduce-scatter and an all-gather, each ``(M - 1)`` chunks of ``4 n / M`` bytes).
- ``"reduce_scatter_fp32_all_gather_4bit"``: a ring reduce-scatter in fp32, ``(M - 1) / M * 4 n``,
  then each rank quantises the summed chunk it owns (``n / M`` values) and all-gathers the
  payloads, ``(M - 1) c(n / M)``; the sum is quantised once, after the fp32 reduction.

These are formulas only; :mod:`companion.diloco.traffic_measure` counts the bytes real gloo
collectives are handed, to check them. ``n`` must be a multiple of ``M`` (and, for the third
scheme, ``n / M`` of ``B``, so that the chunks' blocks are full).
"""

from __future__ import annotations

import math

SCHEMES = ("all_gather_4bit", "all_reduce_fp32", "reduce_scatter_fp32_all_gather_4bit")
FP32_BYTES = 4
SCALE_BYTES = 4  # one fp32 scale per block


def payload_bytes(n: int, block_size: int = 64) -> int:
    """Bytes of ``n`` values as 4-bit codes (two per byte, blocks padded) plus one fp32 scale a block."""
    if n < 1 or block_size < 2 or block_size % 2:
        raise ValueError(f"need n >= 1 and an even block_size >= 2, got n={n!r}, block_size={block_size!r}")
    blocks = math.ceil(n / block_size)
    return blocks * (block_size // 2 + SCALE_BYTES)


def per_rank_bytes(scheme: str, n: int, M: int, block_size: int = 64) -> float:
    """Bytes one rank sends for ``scheme`` (one of :data:`SCHEMES`) over ``M`` ranks."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if M < 2 or n % M:
        raise ValueError(f"need M >= 2 workers and n divisible by M, got n={n}, M={M}")
    if scheme == "all_gather_4bit":
        return (M - 1) * payload_bytes(n, block_size)
    if scheme == "all_reduce_fp32":
        return 2 * (M - 1) / M * FP32_BYTES * n
    return (M - 1) / M * FP32_BYTES * n + (M - 1) * payload_bytes(n // M, block_size)


def break_even_workers(n: int, block_size: int = 64) -> float:
    """The ``M`` at which all-gathering 4-bit payloads sends as much as an fp32 ring all-reduce.

    ``(M - 1) c = 2 (M - 1) 4 n / M`` gives ``M = 8 n / c``: below it the all-gather sends less.
    For ``n`` a multiple of ``B`` that is ``16 / (1 + 8 / B)``; without scales it would be 16.
    """
    return 2 * FP32_BYTES * n / payload_bytes(n, block_size)
