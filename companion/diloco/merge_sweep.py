"""How do the overlap delay ``tau``, the merge weight ``alpha`` and the payload's bits move the loss?

Streaming DiLoCo with overlap applies a fragment's outer update ``tau`` inner steps after it was
launched and merges it into the worker's parameters as ``alpha theta_local + (1 - alpha)
theta_global`` (Alg. 2, line 12). This sweep trains the chapter's Streaming DiLoCo (the paper's
outer rate, :data:`companion.diloco.paper.STREAMING_OUTER_LR`) at every combination of
:data:`TAUS`, :data:`ALPHAS` and :data:`BITS` on the chapter's default task and stores each
run's held-out loss curve. Notebook 2's explorer steps through these stored runs; the runs the
notebook trains live are points of this grid, rerun.

``python -m companion.diloco.merge_sweep`` writes ``book/diloco/results/merge_sweep.json`` with
provenance (about 25 runs of two workers; 3-4 minutes on two cores).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from companion.provenance import write_result

from . import experiments, runner

RESULTS = Path(__file__).resolve().parents[2] / "book" / "diloco" / "results" / "merge_sweep.json"

#: Overlap delays in inner steps (the chapter's H / P = 10 allows 0..9).
TAUS = (0, 1, 2, 5)
#: Merge weights of the local parameters (0: take the outer parameters, 1: keep the local ones).
ALPHAS = (0.0, 0.5, 1.0)
#: Payload bits: 4 (the chapter's blockwise integers) or None (fp32).
BITS = (4, None)


def sweep_specs(taus=TAUS, alphas=ALPHAS, bits=BITS) -> list:
    """The chapter's overlapped Streaming spec at every ``(tau, alpha, bits)``."""
    overlap = experiments.streaming_specs()[2]
    return [overlap.with_(tau=t, alpha=a, bits=b) for t, a, b in itertools.product(taus, alphas, bits)]


def key(tau: int, alpha: float, bits: int | None) -> str:
    """The row key of a run in the stored result, e.g. ``"tau=1 alpha=0.5 bits=4"``."""
    return f"tau={int(tau)} alpha={float(alpha):g} bits={bits if bits else 32}"


def sweep(taus=TAUS, alphas=ALPHAS, bits=BITS, world_size: int = 2) -> dict:
    """Every run's held-out loss curve (nats/token at ``eval_steps``) and final loss."""
    t0 = time.perf_counter()
    specs = sweep_specs(taus, alphas, bits)
    results = runner.run_many(specs, world_size=world_size)
    rows = {key(r.spec.tau, r.spec.alpha, r.spec.bits): {
        "tau": r.spec.tau, "alpha": r.spec.alpha, "bits": r.spec.bits or 32,
        "eval_steps": list(r.eval_steps), "eval_losses": [float(x) for x in r.eval_losses],
        "final_loss": float(r.final_loss)} for r in results}
    return {"taus": list(taus), "alphas": list(alphas), "bits": [b or 32 for b in bits],
            "world_size": world_size, "steps": specs[0].steps, "H": specs[0].H,
            "n_fragments": specs[0].n_fragments, "outer_lr": specs[0].outer_lr,
            "rows": rows, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = sweep()
    write_result(args.out, result, "python -m companion.diloco.merge_sweep")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    for name, row in result["rows"].items():
        print(f"  {name:>24}: {row['final_loss']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
