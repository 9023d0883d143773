"""Per-rank results as JSON: the same file from :func:`~companion.comm.launch` and from ``torchrun``."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

from companion.provenance import provenance


def to_jsonable(value):
    """``value`` with tensors, arrays, dataclasses and tuples turned into JSON types (NaN and inf kept as strings)."""
    if isinstance(value, torch.Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer)):
        return to_jsonable(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot write a {type(value).__name__} as JSON: {value!r}")


def write_results(path, per_rank: list, how: str) -> Path:
    """Write ``per_rank`` (rank 0's result first) with provenance to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"provenance": provenance(), "how": how, "world_size": len(per_rank),
               "results": to_jsonable(per_rank)}
    path.write_text(json.dumps(payload, indent=1))
    return path
