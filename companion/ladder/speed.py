"""Inference speed of standard, Ladder, parallel-block and no-communication decoders at TP degree p.

:func:`measure_speed` launches ``p`` processes once (:func:`companion.comm.launch`) and times
prefill and greedy decode steps for every (link setting, batch size), the variants
interleaved step by step. The slowest rank sets the pace of every step.

Other processes on a shared machine only ever add time, and on a busy two-core machine they
disturb many steps. So a speed-up is the *median of the ratios of neighbouring steps* (standard
step time over the variant's next step time): a load spike that straddles both cancels, one that
hits only one is an outlier the median ignores. Throughputs use the median step time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from companion import comm
from companion.ladder.workers import (  # noqa: F401
    FREE_NETWORK,
    VARIANTS,
    LinkPerCompute,
    check_variants,
    speed_worker,
)
from companion.ladder.shaping import ShapedPerCompute  # noqa: F401
from companion.lm import GPTConfig


@dataclass(frozen=True)
class SpeedRow:
    """One variant at one link setting and batch size (tokens/s summed over the batch)."""

    setting: str
    variant: str
    batch_size: int
    prefill_tokens_per_s: float  # batch x prompt length / median prefill time
    decode_tokens_per_s: float  # batch / median decode-step time
    prefill_speedup: float  # median over repeats of standard / this variant, paired prefill times
    decode_speedup: float  # median over steps of standard / this variant, neighbouring step times
    decode_speedup_notch: float  # 1.58 IQR / sqrt(n) of those ratios: a 95 % interval of the median


@dataclass
class SpeedResult:
    """Every :class:`SpeedRow`, one decode step's spans per variant (for a Gantt chart), and the
    calibration: ``module_compute_s`` (the ``c`` the ranks measured) and the ``links`` they used;
    ``steps`` keeps every decode step's time, repeats concatenated, for pooling several runs."""

    rows: list[SpeedRow]
    spans: dict = field(default_factory=dict)
    module_compute_s: float = 0.0
    links: dict = field(default_factory=dict)
    steps: dict = field(default_factory=dict)  # (setting, batch, variant) -> slowest-rank decode step times (s)
    shaping: dict = field(default_factory=dict)  # setting -> the shaped rate and its calibration

    def get(self, setting: str, variant: str, batch_size: int) -> SpeedRow:
        for row in self.rows:
            if (row.setting, row.variant, row.batch_size) == (setting, variant, batch_size):
                return row
        raise KeyError(f"no row for setting={setting!r}, variant={variant!r}, batch_size={batch_size}")

    def speedup(self, setting: str, batch_size: int, variant: str = "ladder", phase: str = "decode") -> float:
        """How many times faster ``variant`` runs than standard (``phase``: "decode" or "prefill")."""
        if phase not in ("decode", "prefill"):
            raise ValueError(f"phase must be 'decode' or 'prefill', got {phase!r}")
        return getattr(self.get(setting, variant, batch_size), f"{phase}_speedup")


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
    variants: tuple[str, ...] = VARIANTS,
    link: comm.ShapedLink | None = None,
) -> SpeedResult:
    """Time generation on ``tp_size`` processes for each named setting.

    A setting is a :class:`companion.comm.Link`, a :class:`~companion.ladder.workers.LinkPerCompute`, ``None`` (bare gloo) or
    :data:`~companion.ladder.workers.FREE_NETWORK`. ``batch_sizes`` is either a tuple (every
    setting at every batch size) or a dict from setting name to its batch sizes. ``variants``
    names the variants timed (default: all of :data:`VARIANTS`; each costs its share of the run).
    With ``link`` (a :class:`companion.comm.ShapedLink`) the ranks run in a shaped network at that
    rate, and :class:`~companion.ladder.shaping.ShapedPerCompute` settings reshape it.
    Returns a :class:`SpeedResult`.
    """
    variants = check_variants(variants)
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
    shaped = [name for name, s in settings.items() if isinstance(s, ShapedPerCompute)]
    if shaped and link is None:
        raise ValueError(f"settings {shaped} shape a real link: pass link=comm.ShapedLink(rate), the "
                         "fast link the launch starts on")
    results = comm.launch(
        speed_worker, tp_size, cfg, dict(settings), cases, prompt_len, n_new, repeats,
        gantt_setting, seed, variants, link, timeout_s=timeout_s, link=link,
    )
    # slowest rank per (setting, batch, repeat) and variant, step by step
    prefill: dict = {}
    steps: dict = {}
    for res in results:
        for name, b, rep, prefill_s, step_s in res["times"]:
            for v in variants:
                key = (name, b, v)
                prefill.setdefault(key, {})[rep] = max(prefill.get(key, {}).get(rep, 0.0), prefill_s[v])
                old = steps.setdefault(key, {}).get(rep, [0.0] * len(step_s[v]))
                steps[key][rep] = [max(x, y) for x, y in zip(old, step_s[v])]
    rows = []
    all_steps = {}
    for name, b in cases:
        std_prefill = np.array([prefill[(name, b, "standard")][r] for r in range(repeats)])
        std_steps = np.concatenate([steps[(name, b, "standard")][r] for r in range(repeats)])
        for v in variants:
            v_prefill = np.array([prefill[(name, b, v)][r] for r in range(repeats)])
            v_steps = np.concatenate([steps[(name, b, v)][r] for r in range(repeats)])
            all_steps[(name, b, v)] = v_steps
            ratios = std_steps / v_steps
            q1, q3 = np.quantile(ratios, [0.25, 0.75])
            rows.append(SpeedRow(
                name, v, b,
                prefill_tokens_per_s=float(b * prompt_len / np.median(v_prefill)),
                decode_tokens_per_s=float(b / np.median(v_steps)),
                prefill_speedup=float(np.median(std_prefill / v_prefill)),
                decode_speedup=float(np.median(ratios)),
                decode_speedup_notch=float(1.58 * (q3 - q1) / np.sqrt(len(ratios))),
            ))
    spans = {v: [s for res in results for s in res["spans"].get(v, [])] for v in variants}
    return SpeedResult(rows, spans if gantt_setting is not None else {}, results[0]["module_compute_s"],
                       results[0]["links"], all_steps, results[0]["shaping"])

