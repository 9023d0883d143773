"""Benchmark: does CO2's loss gap to synchronous local SGD shrink when training runs longer?

The worked solution of exercise ``co2-ex-longer`` (book/co2/03_convergence.ipynb) reads the
result. For each training length (the notebook's default 160 inner steps, its paper scale 800,
and one in between) two worker processes train, from scratch, over bare gloo, as the notebook
does at that length:

1. ``sync local SGD``: the synchronous baseline (α = 1, no momentum, no clip), which also
   records its pseudo-gradients; the penalty ``Λ* = 4αρ̂`` is derived from them
   (:func:`companion.co2.penalty_sweep.derive_penalty`), as notebook 3 derives it;
2. ``CO2``: τ = 8, ``Λ = Λ*``, clip φ = 0.01, β = 0, the notebook's main CO2 run;
3. ``sync, CO2's outer step``: synchronous local SGD whose outer step is exactly CO2's,
   ``a ← a − (α/Λ)·clip_{Λφ}(Δ) = a − α·clip_φ(Δ/Λ)``, but with a fresh average: it differs
   from CO2 only in the one-round staleness.

So ``CO2 / sync, CO2's outer step`` is the price of staleness alone, and
``sync, CO2's outer step / sync local SGD`` the price of the smaller, clipped outer step. It
writes the final held-out losses (nats per token) and each length's ``ρ̂`` and ``Λ*`` to
``benchmarks/results/co2_longer.json`` with the settings and provenance; a few minutes on two
cores.

    .venv/bin/python benchmarks/co2_longer.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from companion.co2 import experiments, penalty_sweep
from companion.co2.outer import OuterConfig
from companion.co2.schedule import Schedule
from companion.co2.worker import RunSpec, TaskConfig
from companion.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results" / "co2_longer.json"

#: The settings of co2/03's main CO2 run (its cell "The runs"); Λ is derived per length.
LOCAL_STEPS = 8
CLIP_THRESHOLD = 0.01
LENGTHS = (160, 400, 800)  # the notebook's default and paper scales, and one between


def co2_specs(n_steps: int, local_steps: int, gap_penalty: float, clip_threshold: float) -> list:
    """CO2 and synchronous local SGD with CO2's exact outer step (see the module docstring)."""
    co2 = OuterConfig(gap_penalty=gap_penalty, clip_threshold=clip_threshold)
    same_step = OuterConfig(outer_lr=1.0 / gap_penalty, clip_threshold=gap_penalty * clip_threshold)
    return [
        RunSpec(Schedule.co2(local_steps, co2), n_steps, name="CO2"),
        RunSpec(Schedule.local_sgd(local_steps, same_step), n_steps, name="sync, CO2's outer step"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    task = TaskConfig()
    start = time.perf_counter()
    rows, derived = [], []
    for n in args.lengths:
        (sync,) = experiments.run([penalty_sweep.sync_spec(LOCAL_STEPS, n)], task=task, timeout_s=3600.0)
        rho, penalty = penalty_sweep.derive_penalty(sync)
        derived.append(dict(n_steps=n, rho_hat=float(rho), gap_penalty=float(penalty)))
        specs = co2_specs(n, LOCAL_STEPS, penalty, CLIP_THRESHOLD)
        results = [sync] + experiments.run(specs, task=task, timeout_s=3600.0)
        rows += [dict(name=r.name, n_steps=n, eval_loss=float(r.eval_loss)) for r in results]
    out = dict(
        benchmark="co2_longer", local_steps=LOCAL_STEPS, clip_threshold=CLIP_THRESHOLD,
        lengths=list(args.lengths), derived=derived,
        loss_floor=float(task.source().loss_floor(task.seq_len)),
        seconds=time.perf_counter() - start, **provenance(), rows=rows,
    )
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for d in derived:
        print(f"{d['n_steps']:5d}  rho_hat {d['rho_hat']:.3f}  Lambda* {d['gap_penalty']:.3f}")
    for r in rows:
        print(f"{r['n_steps']:5d}  {r['name']:24s} {r['eval_loss']:.4f}")


if __name__ == "__main__":
    main()
