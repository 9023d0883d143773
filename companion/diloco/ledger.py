"""Byte accounting: what one worker puts on the wire, per sync and in total."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SyncRecord:
    """One payload sent by a worker: after inner step ``step``, for ``fragment`` (-1: whole model)."""

    step: int
    fragment: int
    nbytes: int


@dataclass
class ByteLedger:
    """Payload bytes of one worker. A *sync* is everything sent after the same inner step.

    ``nbytes`` counts the message a worker contributes (fp32 values, or 4-bit codes plus their
    fp32 scales), independent of the collective's algorithm; a ring all-reduce among ``p``
    workers puts ``2 (p - 1) / p`` times that on each link.
    """

    records: list[SyncRecord] = field(default_factory=list)

    def record(self, step: int, fragment: int, nbytes: int) -> None:
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        self.records.append(SyncRecord(int(step), int(fragment), int(nbytes)))

    def per_sync(self) -> dict[int, int]:
        """``{step: bytes sent after that step}`` for every step that sent anything."""
        out: dict[int, int] = {}
        for r in self.records:
            out[r.step] = out.get(r.step, 0) + r.nbytes
        return out

    @property
    def total_bytes(self) -> int:
        return sum(r.nbytes for r in self.records)

    @property
    def peak_bytes(self) -> int:
        """Largest single sync: what the link must carry in one burst."""
        return max(self.per_sync().values(), default=0)

    @property
    def n_syncs(self) -> int:
        return len(self.per_sync())
