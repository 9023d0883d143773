"""The structure of a worker's results with the timings left out, to compare two runs.

Timings differ from run to run, so :func:`shape_of` keeps only their type; everything else
(ints, strings, tensor shapes, dtypes and devices, span names and kinds) is kept. The tests use
it to check that a worker run under ``strict_device`` returns what the plain run returns.
"""

from __future__ import annotations

import dataclasses

import torch

from .launcher import launch
from .timeline import Span


def plain_then_strict(rank: int, world_size: int, fn, *args) -> tuple:
    """Worker: ``fn`` once as it is, then once under :func:`strict_placement`, in one process group.

    One launch instead of two (each start of a process costs seconds); ``fn`` must not depend
    on state its first run leaves behind (the book's workers seed themselves).
    """
    from .placement import strict_placement

    plain = fn(rank, world_size, *args)
    with strict_placement():
        strict = fn(rank, world_size, *args)
    return plain, strict


def both_ways(fn, world_size: int, *args, timeout_s: float = 180.0) -> tuple[list, list]:
    """``(results, strict results)`` of ``fn`` run without and with the strict device check."""
    pairs = launch(plain_then_strict, world_size, fn, *args, timeout_s=timeout_s)
    return [p for p, _ in pairs], [s for _, s in pairs]


def shape_of(value):
    """``value`` with every float replaced by ``float`` and every span by its rank, name and kind."""
    if isinstance(value, Span):
        return ("span", value.rank, value.name, value.kind)
    if isinstance(value, bool) or isinstance(value, (int, str)) or value is None:
        return value
    if isinstance(value, float):
        return float
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), value.dtype, value.device.type)
    if isinstance(value, dict):
        return {k: shape_of(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [shape_of(v) for v in value]
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, shape_of(dataclasses.asdict(value)))
    return type(value).__name__


def assert_same_shape(plain, strict) -> None:
    """Same keys, lengths, span names and kinds, non-float values; floats are not compared."""
    assert shape_of(strict) == shape_of(plain)
