"""Inference speed of standard, Ladder and no-communication decoders at tensor-parallel degree p.

:func:`measure_speed` launches ``p`` processes once (:func:`companion.comm.launch`), times greedy
generation for every (link setting, batch size, variant), and reduces the per-rank times the way a
tensor-parallel job experiences them: the slowest rank sets the pace of a run. Of the repeats it
keeps the fastest: other processes on a shared machine only ever slow a run down, so the best
repeat is the least disturbed estimate of what the code costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from companion import comm
from companion.ladder.workers import FREE_NETWORK, VARIANTS, LinkPerCompute, speed_worker  # noqa: F401
from companion.lm import GPTConfig


@dataclass(frozen=True)
class SpeedRow:
    """Best-of-repeats throughput of one variant at one link setting and batch size (tokens/s, whole batch)."""

    setting: str
    variant: str
    batch_size: int
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    decode_spread: float  # (max - min) / max of the per-repeat decode throughputs: the noise


@dataclass
class SpeedResult:
    """Every :class:`SpeedRow`, one decode step's spans per variant (for a Gantt chart), and the
    calibration: ``module_compute_s`` (the ``c`` the ranks measured) and the ``links`` they used."""

    rows: list[SpeedRow]
    spans: dict = field(default_factory=dict)
    module_compute_s: float = 0.0
    links: dict = field(default_factory=dict)

    def get(self, setting: str, variant: str, batch_size: int) -> SpeedRow:
        for row in self.rows:
            if (row.setting, row.variant, row.batch_size) == (setting, variant, batch_size):
                return row
        raise KeyError(f"no row for setting={setting!r}, variant={variant!r}, batch_size={batch_size}")

    def speedup(self, setting: str, batch_size: int, variant: str = "ladder", phase: str = "decode") -> float:
        """Throughput of ``variant`` over that of the standard model (``phase``: "decode" or "prefill")."""
        if phase not in ("decode", "prefill"):
            raise ValueError(f"phase must be 'decode' or 'prefill', got {phase!r}")
        attr = f"{phase}_tokens_per_s"
        base = getattr(self.get(setting, "standard", batch_size), attr)
        return getattr(self.get(setting, variant, batch_size), attr) / base


def measure_speed(
    cfg: GPTConfig,
    settings: dict,
    *,
    tp_size: int = 2,
    batch_sizes: tuple[int, ...] | dict = (1,),
    prompt_len: int = 16,
    n_new: int = 16,
    repeats: int = 3,
    gantt_setting: str | None = None,
    seed: int = 0,
    timeout_s: float = 120.0,
) -> SpeedResult:
    """Time generation on ``tp_size`` processes for each named setting.

    A setting is a :class:`companion.comm.Link`, a :class:`~companion.ladder.workers.LinkPerCompute`, ``None`` (bare gloo) or
    :data:`~companion.ladder.workers.FREE_NETWORK`. ``batch_sizes`` is either a tuple (every
    setting at every batch size) or a dict from setting name to its batch sizes.
    Returns a :class:`SpeedResult`.
    """
    if not settings:
        raise ValueError("settings is empty: name at least one link (None for bare gloo)")
    if gantt_setting is not None and gantt_setting not in settings:
        raise ValueError(f"gantt_setting {gantt_setting!r} is not one of the settings {list(settings)}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if isinstance(batch_sizes, dict):
        unknown = set(batch_sizes) - set(settings)
        if unknown:
            raise ValueError(f"batch_sizes names settings {sorted(unknown)} that are not in settings")
        cases = [(name, b) for name in settings for b in batch_sizes.get(name, ())]
    else:
        cases = [(name, b) for name in settings for b in batch_sizes]
    if not cases or min(b for _, b in cases) < 1:
        raise ValueError(f"need at least one batch size, all >= 1; got {batch_sizes!r}")
    results = comm.launch(
        speed_worker, tp_size, cfg, dict(settings), cases, prompt_len, n_new, repeats,
        gantt_setting, seed, timeout_s=timeout_s,
    )
    # slowest rank per (setting, variant, batch, repeat)
    worst: dict = {}
    for res in results:
        for name, v, b, rep, prefill_s, decode_s in res["times"]:
            key = (name, v, b, rep)
            p, d = worst.get(key, (0.0, 0.0))
            worst[key] = (max(p, prefill_s), max(d, decode_s))
    rows = []
    for name, b in cases:
        for v in VARIANTS:
            reps = [worst[(name, v, b, r)] for r in range(repeats)]
            prefill = [b * prompt_len / p for p, _ in reps]
            decode = [b * n_new / d for _, d in reps]
            best = max(decode)
            rows.append(SpeedRow(name, v, b, max(prefill), best, (best - min(decode)) / best))
    spans = {v: [s for res in results for s in res["spans"].get(v, [])] for v in VARIANTS}
    return SpeedResult(rows, spans if gantt_setting is not None else {}, results[0]["module_compute_s"],
                       results[0]["links"])

