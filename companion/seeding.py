"""Seeding: the same seed gives the same numbers on one machine."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's ``random``, NumPy's legacy global state and PyTorch.

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed``; prefer passing that
    generator around explicitly over relying on global state.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        import torch
    except ImportError:  # the package works without torch for the NumPy-only chapters
        pass
    else:
        torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """Turn a seed or a generator into a ``numpy.random.Generator``.

    ``None`` is refused: an unseeded generator would make results irreproducible silently.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("pass a seed or a numpy Generator; None would be irreproducible")
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a non-negative int or numpy Generator, got {rng!r}")
