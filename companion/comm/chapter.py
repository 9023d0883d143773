"""The worker of the chapter "The arithmetic of overlap": everything measured in one launch."""

from __future__ import annotations

import torch
import torch.distributed as dist

from .devices import device
from .overlap import OverlapSetting, overlap_worker
from .quantize import dequantize, quantize, quantized_all_reduce
from .ring import ring_all_gather, ring_reduce_scatter


def collectives_check(rank: int, world_size: int, numel: int, seed: int) -> dict:
    """Ring reduce-scatter/all-gather and quantised all-reduces against ``dist.all_reduce``.

    Returns the largest absolute differences (``ring_rs_err``, ``ring_ag_err``), and for 8 and 4
    bits the largest error of the quantised sum (``q{bits}_err``), the largest error allowed by
    the rounding (``q{bits}_bound``: half a step per rank and block, summed over ranks) and the
    bytes per rank (``q{bits}_bytes``; ``fp32_bytes`` for comparison).
    """
    gen = torch.Generator().manual_seed(seed + rank)
    x = torch.randn(numel, generator=gen, device="cpu").to(device())  # seeded on the CPU
    exact = x.clone()
    dist.all_reduce(exact)
    chunk = ring_reduce_scatter(x)
    k = numel // world_size
    out = {"ring_rs_err": float((chunk - exact[rank * k:(rank + 1) * k]).abs().max()),
           "ring_ag_err": float((ring_all_gather(chunk) - exact).abs().max()), "fp32_bytes": 4 * numel}
    for bits in (8, 4):
        q = quantize(x, bits=bits)
        total = quantized_all_reduce(x, bits=bits)
        # every rank's rounding error is at most half its block's step; add the bounds over ranks
        step = q.scales.repeat_interleave(q.block_size)[:numel] / 2
        bound = step.clone()
        dist.all_reduce(bound)
        out[f"q{bits}_err"] = float((total - exact).abs().max())
        out[f"q{bits}_bound_ok"] = bool(((total - exact).abs() <= bound + 1e-5).all())
        out[f"q{bits}_rel_err"] = float((total - exact).norm() / exact.norm())
        out[f"q{bits}_bytes"] = q.nbytes
        out[f"q{bits}_roundtrip_err"] = float((dequantize(q) - x).abs().max())
    return out


def chapter_worker(rank: int, world_size: int, settings: list[OverlapSetting], n_steps: int, repeats: int,
                   matmuls: int, check_numel: int = 4096, seed: int = 0) -> dict:
    """Check the collectives, then run the overlap experiment; see :func:`overlap_worker`."""
    return {"checks": collectives_check(rank, world_size, check_numel, seed),
            "overlap": overlap_worker(rank, world_size, settings, n_steps=n_steps, repeats=repeats,
                                      matmuls=matmuls, seed=seed)}
