"""How sensitive is (Streaming) DiLoCo to the outer learning rate on the chapter's task?

Streaming DiLoCo tuned its outer learning rate to 0.4 at small scale and kept it fixed
(:data:`companion.diloco.paper.STREAMING_OUTER_LR`); DiLoCo uses 0.7. This sweep trains DiLoCo
and Streaming DiLoCo (the chapter's P fragments, no overlap) at each rate of
:data:`companion.diloco.experiments.OUTER_LRS` on the chapter's default task and reports the
final held-out loss of the outer parameters.

``python -m companion.diloco.outer_lr_sweep`` writes ``book/diloco/results/outer_lr_sweep.json``
with provenance; notebook 2 shows it, and its own Streaming run at 0.4 is the sweep's point
rerun live.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from companion.provenance import write_result

from . import experiments, runner

RESULTS = Path(__file__).resolve().parents[2] / "book" / "diloco" / "results" / "outer_lr_sweep.json"


def sweep(outer_lrs=experiments.OUTER_LRS, world_size: int = 2) -> dict:
    """Final held-out losses (nats/token) of DiLoCo and Streaming DiLoCo at every outer rate."""
    t0 = time.perf_counter()
    specs = experiments.outer_lr_sweep_specs(outer_lrs)
    results = runner.run_many(specs, world_size=world_size)
    rows = [{"method": "Streaming DiLoCo" if r.spec.n_fragments > 1 else "DiLoCo",
             "outer_lr": r.spec.outer_lr, "n_fragments": r.spec.n_fragments,
             "final_loss": r.final_loss} for r in results]
    return {"outer_lrs": list(outer_lrs), "world_size": world_size, "steps": specs[0].steps,
            "H": specs[0].H, "rows": rows, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = sweep()
    write_result(args.out, result, "python -m companion.diloco.outer_lr_sweep")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    for row in result["rows"]:
        print(f"  {row['method']:>17} outer lr {row['outer_lr']:.1f}: {row['final_loss']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
