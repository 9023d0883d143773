"""The Ladder's and the parallel block's speed-ups as the link goes from slow to fast (a/c = 3 .. 0.5).

The link, not the batch, moves the ratio ``a / c`` of one all-reduce to one module's compute, and
the link is real: every launch runs its two ranks in network namespaces whose NICs the kernel
throttles (:class:`companion.comm.ShapedLink`), and gloo's all-reduces cross them. At batch
:data:`SETTINGS` ``["batch"]`` each launch first measures ``c`` in calibration runs of its own
(decode steps over a free network, :func:`companion.ladder.workers.speed_worker`), then the
all-reduce's floor and its time at one probe rate, and sets each rank's rate so that one decode
step's all-reduce should take ``a = r c`` for each ``r`` of :data:`RATIOS`
(:mod:`companion.ladder.shaping`); only then does it time the judged runs. A target below the
floor (what gloo costs on this machine at any rate) is run at the fast rate and marked
unreachable.

Each launch times every variant interleaved step by step (:mod:`companion.ladder.speed`); the
sweep repeats the launch :data:`SETTINGS` ``["launches"]`` times and keeps, per ratio and variant,

- the median over all steps of all launches of the ratio of neighbouring steps (standard over
  the variant), with its notch (1.58 IQR / sqrt(n), a 95 % interval of that median);
- each launch's own median, whose spread says how far one launch's answer moves on this machine
  (the noise a live rerun in the notebook is held to);
- the median step times, and the model's predictions from the measured no-communication step
  and the calibrated all-reduce (:func:`companion.ladder.cost_model.predicted_step_times`);
- the rates, floors and targets of the calibration.

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

from companion import comm, lm
from companion.ladder.cost_model import parallel_speedup, predicted_step_times, uniform_speedup
from companion.ladder.speed import VARIANTS, ShapedPerCompute, measure_speed
from companion.provenance import provenance

RESULTS = Path(__file__).resolve().parents[2] / "book" / "ladder" / "results" / "ac_sweep.json"

#: Communication over compute the calibration aims at, from a slow link to a fast one (the runs'
#: effective ratios land near, not on, them: an all-reduce inside a decode step is not one timed
#: alone).
RATIOS = (4.0, 3.0, 2.0, 1.0, 0.67, 0.5)

#: The model and run settings; notebook 2's live run uses the same model, batch, prompt and fast
#: link. At batch 32 bare gloo's all-reduce over the namespaces' veths costs a quarter to a half
#: of a module's compute on two cores (it moves with the load); at batch 8 about one, at batch 1
#: more (no link could then be fast enough for a/c below it). A short prompt: at batch 32 each prefill costs several decode
#: steps, and only decode steps are judged.
SETTINGS = dict(d_model=1024, n_layers=4, n_heads=8, vocab_size=32, seq_len=64, tp_size=2, batch=32,
                prompt_len=4, n_new=16, repeats=2, launches=3, base_gbit_s=10.0, seed=0)


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
    n_modules, batch = 2 * cfg.n_layers, settings["batch"]
    links = {label(r): ShapedPerCompute(r) for r in ratios}
    launches = []
    t0 = time.perf_counter()
    for i in range(settings["launches"]):
        load = list(os.getloadavg())
        res = measure_speed(cfg, links, tp_size=settings["tp_size"], batch_sizes=(batch,),
                            prompt_len=settings["prompt_len"], n_new=settings["n_new"],
                            repeats=settings["repeats"], seed=settings["seed"] + i,
                            timeout_s=timeout_s, variants=VARIANTS,
                            link=comm.ShapedLink(settings["base_gbit_s"]))
        launches.append((res, load))
    rows = []
    for r in ratios:
        name = label(r)
        step_s = {v: np.concatenate([res.steps[(name, batch, v)] for res, _ in launches]) for v in VARIANTS}
        row = {"ratio": r, "setting": name, "variants": {}}
        for v in VARIANTS:
            ratios_v = step_s["standard"] / step_s[v]
            per_launch = [float(np.median(res.steps[(name, batch, "standard")] / res.steps[(name, batch, v)]))
                          for res, _ in launches]
            row["variants"][v] = {
                "speedup": float(np.median(ratios_v)), "notch": _notch(ratios_v),
                "speedup_per_launch": per_launch, "median_step_s": float(np.median(step_s[v])),
            }
        cal = [res.shaping[name] for res, _ in launches]
        row["module_compute_s"] = [res.module_compute_s for res, _ in launches]
        for key in ("rate_gbit_s", "target_allreduce_s", "floor_allreduce_s", "probe_allreduce_s",
                    "probe_rate_gbit_s", "reachable"):
            row[key] = [c[key] for c in cal]
        # what calibration says one all-reduce takes: the target, or the floor where no rate reaches it
        a = [c["target_allreduce_s"] if c["reachable"] else c["floor_allreduce_s"] for c in cal]
        row["allreduce_s"] = a
        row["model"] = {"ladder": uniform_speedup(1.0, r, n_modules), "parallel": parallel_speedup(1.0, r, n_modules)}
        row["predicted_step_s"] = predicted_step_times(row["variants"]["no-comm"]["median_step_s"],
                                                       float(np.median(a)), n_modules)
        row["calibrated_c_s"] = float(np.median(row["module_compute_s"]))
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
              f"no-comm {v['no-comm']['speedup']:.2f}  effective a/c {row['effective_ratio']:.2f} "
              f"rate {np.median(row['rate_gbit_s']) * 1e3:.1f} Mbit/s reachable {row['reachable']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
