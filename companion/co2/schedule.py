"""Which of the three methods a worker runs: one dataclass, validated, shared by all of them.

==================  ===============  ==========================================================
``method``          ``local_steps``  what happens
==================  ===============  ==========================================================
``data_parallel``   1                all-reduce the gradients every step, then the inner step
``local_sgd``       τ                τ inner steps, blocking all-reduce of the parameters,
                                     outer step with the fresh average (no staleness)
``co2``             τ                τ inner steps, *launch* the all-reduce of a private
                                     snapshot, outer step with the average launched one round
                                     earlier (one-step staleness), keep training
==================  ===============  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .outer import OuterConfig
from .overlap import METHODS, check_local_steps


@dataclass(frozen=True)
class Schedule:
    """The method, its τ and its outer step. Build with the class methods below.

    Parameters
    ----------
    method : {"data_parallel", "local_sgd", "co2"}
    local_steps : int
        τ, inner steps per round (the paper's τ; 1 for data-parallel).
    outer : OuterConfig
        The outer step (unused by data-parallel).
    """

    method: str
    local_steps: int = 1
    outer: OuterConfig = field(default_factory=OuterConfig)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        check_local_steps(self.local_steps)
        if self.method == "data_parallel" and self.local_steps != 1:
            raise ValueError(f"data_parallel synchronises every step, so local_steps must be 1, "
                             f"got {self.local_steps}; use method='local_sgd' for τ > 1")
        if not isinstance(self.outer, OuterConfig):
            raise ValueError(f"outer must be an OuterConfig, got {self.outer!r}")

    @property
    def stale(self) -> bool:
        """True when the outer step uses the previous round's average (CO2)."""
        return self.method == "co2"

    @classmethod
    def data_parallel(cls) -> "Schedule":
        return cls("data_parallel", 1)

    @classmethod
    def local_sgd(cls, local_steps: int, outer: OuterConfig | None = None) -> "Schedule":
        return cls("local_sgd", local_steps, outer or OuterConfig())

    @classmethod
    def co2(cls, local_steps: int, outer: OuterConfig | None = None) -> "Schedule":
        return cls("co2", local_steps, outer or OuterConfig())

    def label(self) -> str:
        """Short human-readable name, e.g. ``"CO2 τ=8"``."""
        names = {"data_parallel": "data-parallel", "local_sgd": "sync local SGD", "co2": "CO2"}
        return names[self.method] + ("" if self.method == "data_parallel"
                                     else f" τ={self.local_steps}")
