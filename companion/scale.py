"""The scale switch: ``COMPANION_SCALE=default`` (laptop, seconds) or ``paper`` (the paper's sizes).

Chapters call :func:`pick` so that one notebook serves both scales::

    n_train = pick(default=2_000, paper=50_000)
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

SCALES = ("default", "paper")
ENV_VAR = "COMPANION_SCALE"


def current() -> str:
    """The scale in force, read from the ``COMPANION_SCALE`` environment variable."""
    value = os.environ.get(ENV_VAR, "default").strip().lower() or "default"
    if value not in SCALES:
        raise ValueError(f"{ENV_VAR}={value!r} is not one of {SCALES}")
    return value


def is_paper() -> bool:
    """True when the paper-scale experiment was asked for."""
    return current() == "paper"


def pick(*, default: T, paper: T) -> T:
    """Return ``paper`` at paper scale and ``default`` otherwise."""
    return paper if is_paper() else default
