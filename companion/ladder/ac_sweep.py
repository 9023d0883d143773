"""The Ladder's and the parallel block's speed-ups as the link goes from slow to fast (a/c = 3 .. 0.5).

The link, not the batch, moves the ratio ``a / c`` of one all-reduce to one module's compute: at
batch 1, each launch first measures ``c`` in calibration runs of its own (decode steps over a free
network, :func:`companion.ladder.workers.speed_worker`), then sets a modelled link's latency so
that one decode step's all-reduce takes ``a = r c`` for each ``r`` of :data:`RATIOS`, and only then
times the judged runs. A ratio therefore means the same thing on any machine, however fast.

Each launch times every variant interleaved step by step (:mod:`companion.ladder.speed`); the
sweep repeats the launch :data:`SETTINGS` ``["launches"]`` times and keeps, per ratio and variant,

- the median over all steps of all launches of the ratio of neighbouring steps (standard over
  the variant), with its notch (1.58 IQR / sqrt(n), a 95 % interval of that median);
- each launch's own median, whose spread says how far one launch's answer moves on this machine
  (the noise a live rerun in the notebook is held to);
- the median step times, and the model's predictions from the measured no-communication step
  (:func:`companion.ladder.cost_model.predicted_step_times`).

``python -m companion.ladder.ac_sweep`` writes ``book/ladder/results/ac_sweep.json`` with
provenance (and the machine's load before and after); notebook 2 shows it and reruns two ratios
live.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from companion import lm
from companion.ladder.cost_model import parallel_speedup, predicted_step_times, uniform_speedup
from companion.ladder.speed import VARIANTS, LinkPerCompute, measure_speed
from companion.provenance import provenance

RESULTS = Path(__file__).resolve().parents[2] / "book" / "ladder" / "results" / "ac_sweep.json"

#: Communication over compute, from a slow link to a fast one.
RATIOS = (3.0, 2.0, 1.0, 0.67, 0.5)

#: The model and run settings; notebook 2's live run uses the same model, prompt and link bandwidth.
SETTINGS = dict(d_model=1024, n_layers=4, n_heads=8, vocab_size=32, seq_len=64, tp_size=2,
                prompt_len=16, n_new=24, repeats=3, launches=3, gbit_per_s=10.0, seed=0)


def label(ratio: float) -> str:
    """The setting name of ratio ``ratio``: ``"a = 0.67 c"``."""
    return f"a = {ratio:g} c"


def config(settings: dict = SETTINGS) -> lm.GPTConfig:
    """The decoder of the sweep (and of notebook 2)."""
    return lm.GPTConfig(vocab_size=settings["vocab_size"], seq_len=settings["seq_len"],
                        d_model=settings["d_model"], n_layers=settings["n_layers"],
                        n_heads=settings["n_heads"])


def load(path: Path = RESULTS) -> dict:
    """The stored sweep (written by :func:`main`)."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist; run python -m companion.ladder.ac_sweep to write it")
    return json.loads(Path(path).read_text())


def effective_ratio(standard_step_s: float, no_comm_step_s: float) -> float:
    """The ``a / c`` a run really had: the standard step's excess over the no-communication step
    per all-reduce, over the no-communication step per module (``n`` cancels)."""
    if not no_comm_step_s > 0:
        raise ValueError(f"no_comm_step_s must be > 0, got {no_comm_step_s}")
    return (standard_step_s - no_comm_step_s) / no_comm_step_s


def _notch(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75])
    return float(1.58 * (q3 - q1) / np.sqrt(len(x)))


def sweep(ratios=RATIOS, settings: dict = SETTINGS, *, timeout_s: float = 600.0) -> dict:
    """Run :data:`SETTINGS` ``["launches"]`` launches over every ratio; see the module docstring."""
    if not ratios or min(ratios) <= 0:
        raise ValueError(f"ratios must be a non-empty list of positive numbers, got {ratios!r}")
    if settings["launches"] < 1:
        raise ValueError(f"launches must be >= 1, got {settings['launches']}")
    cfg = config(settings)
    n_modules = 2 * cfg.n_layers
    links = {label(r): LinkPerCompute(r, settings["gbit_per_s"], real_collective=False) for r in ratios}
    launches = []
    t0 = time.perf_counter()
    for i in range(settings["launches"]):
        load = list(os.getloadavg())
        res = measure_speed(cfg, links, tp_size=settings["tp_size"], batch_sizes=(1,),
                            prompt_len=settings["prompt_len"], n_new=settings["n_new"],
                            repeats=settings["repeats"], seed=settings["seed"] + i,
                            timeout_s=timeout_s, variants=VARIANTS)
        launches.append((res, load))
    rows = []
    for r in ratios:
        name = label(r)
        step_s = {v: np.concatenate([res.steps[(name, 1, v)] for res, _ in launches]) for v in VARIANTS}
        row = {"ratio": r, "setting": name, "variants": {}}
        for v in VARIANTS:
            ratios_v = step_s["standard"] / step_s[v]
            per_launch = [float(np.median(res.steps[(name, 1, "standard")] / res.steps[(name, 1, v)]))
                          for res, _ in launches]
            row["variants"][v] = {
                "speedup": float(np.median(ratios_v)), "notch": _notch(ratios_v),
                "speedup_per_launch": per_launch, "median_step_s": float(np.median(step_s[v])),
            }
        # the model, fed with what the ranks measured: c from the calibration, a from the link
        c = float(np.median([res.module_compute_s for res, _ in launches]))
        a = [res.links[name].allreduce_time(cfg.d_model * 4, settings["tp_size"]) for res, _ in launches]
        row["module_compute_s"] = [res.module_compute_s for res, _ in launches]
        row["allreduce_s"] = a
        row["latency_s"] = [res.links[name].latency_s for res, _ in launches]
        row["model"] = {"ladder": uniform_speedup(1.0, r, n_modules), "parallel": parallel_speedup(1.0, r, n_modules)}
        row["predicted_step_s"] = predicted_step_times(row["variants"]["no-comm"]["median_step_s"],
                                                       float(np.median(a)), n_modules)
        row["calibrated_c_s"] = c
        # the ratio the run really had: the standard step's excess over no-comm, per all-reduce,
        # over the no-comm step per module (both from the judged runs themselves)
        t_std, t_nc = row["variants"]["standard"]["median_step_s"], row["variants"]["no-comm"]["median_step_s"]
        row["effective_ratio"] = effective_ratio(t_std, t_nc)
        rows.append(row)
    return {"settings": dict(settings), "ratios": list(ratios), "n_modules": n_modules, "rows": rows,
            "load_average_per_launch": [load for _, load in launches],
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--launches", type=int, default=SETTINGS["launches"])
    args = parser.parse_args(argv)
    settings = dict(SETTINGS, launches=args.launches)
    load_before = list(os.getloadavg())
    result = sweep(settings=settings)
    result["provenance"] = provenance("python -m companion.ladder.ac_sweep")
    result["provenance"]["load_average_before"] = load_before
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} in {result['seconds']:.0f} s (load {load_before} -> {result['provenance']['load_average']})")
    for row in result["rows"]:
        v = row["variants"]
        print(f"a/c = {row['ratio']:<5g} ladder {v['ladder']['speedup']:.2f} ± {v['ladder']['notch']:.2f} "
              f"(model {row['model']['ladder']:.2f})  parallel {v['parallel']['speedup']:.2f} ± "
              f"{v['parallel']['notch']:.2f} (model {row['model']['parallel']:.2f})  "
              f"no-comm {v['no-comm']['speedup']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
