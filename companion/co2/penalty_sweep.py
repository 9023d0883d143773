"""Which staleness-gap penalty Λ? The derived value against a measured sweep.

The derivation (:func:`companion.co2.stability.best_gap_penalty`) gives ``Λ* = 4αρ`` for β = 0,
where ``ρ`` is the share of the error one local round removes. :func:`derive_penalty` estimates
``ρ`` from a synchronous local-SGD run's consecutive pseudo-gradients
(:func:`~companion.co2.stability.estimate_local_progress`) and returns ``Λ*``; :func:`sweep`
trains CO2 at a grid of Λ on the same task, in the same processes, and reports each run's
held-out loss. The two are computed independently: the sweep's losses never enter ``Λ*``.

``python -m companion.co2.penalty_sweep`` writes ``book/co2/results/penalty_sweep.json`` with
provenance; notebook 3 shows it and derives ``Λ*`` live from its own synchronous run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from companion.provenance import write_result

from . import experiments, stability
from .outer import OuterConfig
from .schedule import Schedule
from .worker import RunSpec, TaskConfig

RESULTS = Path(__file__).resolve().parents[2] / "book" / "co2" / "results" / "penalty_sweep.json"

#: The chapter's convergence settings (notebook 3): τ = 8, 160 inner steps, clip φ = 0.01.
LOCAL_STEPS, N_STEPS, CLIP = 8, 160, 0.01
PENALTIES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)


def sync_spec(local_steps: int = LOCAL_STEPS, n_steps: int = N_STEPS) -> RunSpec:
    """Synchronous local SGD (α = 1, β = 0) that records its pseudo-gradients' products."""
    return RunSpec(Schedule.local_sgd(local_steps, OuterConfig()), n_steps, name="sync local SGD",
                   track_progress=True)


def co2_spec(penalty: float, local_steps: int = LOCAL_STEPS, n_steps: int = N_STEPS,
             clip: float | None = CLIP) -> RunSpec:
    """CO2 (β = 0) with penalty ``Λ = penalty`` and the chapter's clip."""
    return RunSpec(Schedule.co2(local_steps, OuterConfig(gap_penalty=penalty, clip_threshold=clip)),
                   n_steps, name=f"CO2 Λ={penalty:g}")


def derive_penalty(sync_result, outer_lr: float = 1.0) -> tuple[float, float]:
    """``(ρ̂, Λ*)`` from a synchronous run's :class:`~companion.co2.experiments.RunSummary`."""
    rho = stability.estimate_local_progress(sync_result.delta_products, outer_lr=outer_lr)
    return rho, stability.best_gap_penalty(rho, outer_lr)


def sweep(penalties=PENALTIES, *, task: TaskConfig | None = None) -> dict:
    """One launch: the synchronous run (for ``Λ*``) and CO2 at every penalty."""
    for lam in penalties:
        stability.check_gap_penalty(lam)
    t0 = time.perf_counter()
    results = experiments.run([sync_spec()] + [co2_spec(lam) for lam in penalties], task=task)
    rho, best = derive_penalty(results[0])
    losses = [r.eval_loss for r in results[1:]]
    return {"local_steps": LOCAL_STEPS, "n_steps": N_STEPS, "clip": CLIP, "rho_hat": rho,
            "derived_penalty": best, "sync_loss": results[0].eval_loss,
            "delta_products": results[0].delta_products, "penalties": list(penalties),
            "co2_losses": losses, "measured_best_penalty": penalties[losses.index(min(losses))],
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = sweep()
    write_result(args.out, result, "python -m companion.co2.penalty_sweep")
    print(f"wrote {args.out} in {result['seconds']:.0f} s: rho_hat {result['rho_hat']:.3f}, "
          f"derived penalty {result['derived_penalty']:.2f}, best measured {result['measured_best_penalty']:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
