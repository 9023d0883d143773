"""When each fragment is sent and when it is applied: the staggered schedule of Streaming DiLoCo."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FragmentSchedule:
    """Fragment ``p`` of ``P`` sends its outer gradient every ``H`` inner steps, staggered by ``H / P``.

    Steps count completed inner steps, ``t = 1, 2, ...``. Every ``K = H / P`` steps one fragment
    *launches* its sync (at ``t = K, 2K, ...``, fragments in the order ``0, 1, ..., P-1, 0, ...``),
    and ``tau`` steps later it is *applied*. So fragment ``p`` launches at ``t = (p + 1) K (mod H)``:
    with ``P = 1`` and ``tau = 0`` this is DiLoCo (sync at ``H, 2H, ...``).

    Parameters
    ----------
    H : int
        Inner steps between two syncs of the same fragment (DiLoCo's ``H``).
    n_fragments : int
        ``P``; must divide ``H`` so that the stagger ``H / P`` is a whole number of steps.
    tau : int
        Overlapped inner steps between launching a sync and applying it (Streaming DiLoCo §2.3);
        ``0 <= tau < H / P`` so that at most one fragment is in flight.
    """

    H: int
    n_fragments: int = 1
    tau: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.H, int) or self.H < 1:
            raise ValueError(f"H must be a positive int, got {self.H!r}")
        if not isinstance(self.n_fragments, int) or self.n_fragments < 1:
            raise ValueError(f"n_fragments must be a positive int, got {self.n_fragments!r}")
        if self.H % self.n_fragments:
            raise ValueError(
                f"H={self.H} is not divisible by n_fragments={self.n_fragments}: a fragment must sync "
                f"every H / P whole steps; pick H a multiple of {self.n_fragments}"
            )
        if not isinstance(self.tau, int) or not 0 <= self.tau < self.H // self.n_fragments:
            raise ValueError(
                f"tau={self.tau!r} must satisfy 0 <= tau < H / P = {self.H // self.n_fragments}, "
                "so that a sync lands before the next one leaves"
            )

    @property
    def interval(self) -> int:
        """``K = H / P``: steps between two consecutive launches (of different fragments)."""
        return self.H // self.n_fragments

    def launch_at(self, t: int) -> int | None:
        """The fragment whose sync launches after inner step ``t``, or ``None``."""
        K = self.interval
        if t < 1 or t % K:
            return None
        return (t // K - 1) % self.n_fragments

    def apply_at(self, t: int) -> int | None:
        """The fragment whose sync is applied after inner step ``t`` (launched at ``t - tau``), or ``None``."""
        return self.launch_at(t - self.tau)
