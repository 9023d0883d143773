"""Which device a rank's tensors belong on (its own module, so ``launcher`` and ``placement``
both depend on it and not on each other)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def device() -> torch.device:
    """The device a worker should put its tensors on: its GPU under NCCL, the CPU under gloo."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
