"""The chapter's experiments at paper-like scale, in one command.

    COMPANION_SCALE=paper .venv/bin/python benchmarks/diloco_paper_scale.py --out diloco_paper_scale.json

Runs, on two real worker processes, the runs of notebook 1 (data-parallel and DiLoCo at
H = 25, 100, 500) and notebook 2 (DiLoCo, Streaming DiLoCo with 4 three-layer fragments,
+ overlap tau = 1, alpha = 0.5, + 4-bit payloads) with the sizes of
:func:`companion.diloco.experiments.base_spec` at paper scale (12 layers, d_model 128,
4000 inner steps, H = 100), and writes final losses, bytes and wall times as JSON. Without
``COMPANION_SCALE=paper`` it runs the (fast) default scale of the notebooks. The command also
runs the notebooks' claims as checks and prints which hold.

Each worker uses ``--threads`` CPU threads; on a 2-core laptop the paper scale takes hours,
so it is meant for a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from companion import scale
from companion.diloco import experiments, runner


def summarize(res: runner.RunResult) -> dict:
    return dict(
        label=res.spec.label, method=res.spec.method, H=res.spec.H, n_fragments=res.spec.n_fragments,
        tau=res.spec.tau, alpha=res.spec.alpha, bits=res.spec.bits, steps=res.spec.steps,
        eval_steps=res.eval_steps, eval_losses=res.eval_losses, final_loss=res.final_loss,
        peak_bytes=res.ledgers[0].peak_bytes, total_bytes=res.ledgers[0].total_bytes, wall_s=res.wall_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="diloco_paper_scale.json", help="where to write the JSON results")
    parser.add_argument("--timeout-s", type=float, default=6 * 3600.0)
    args = parser.parse_args()

    specs1 = experiments.dp_vs_diloco_specs()
    specs2 = experiments.streaming_specs()
    start = time.perf_counter()
    results = runner.run_many(specs1 + specs2[1:], world_size=2, timeout_s=args.timeout_s)
    dp, diloco_default = results[0], results[2]
    fp4 = results[-1]
    checks = {
        "diloco_within_10pct_of_dp": abs(diloco_default.final_loss / dp.final_loss - 1) < 0.10,
        "streaming_fp4_within_5pct_of_diloco": abs(fp4.final_loss / diloco_default.final_loss - 1) < 0.05,
        "streaming_fp4_within_10pct_of_dp": abs(fp4.final_loss / dp.final_loss - 1) < 0.10,
        "peak_bytes_ratio_streaming": diloco_default.ledgers[0].peak_bytes / results[len(specs1)].ledgers[0].peak_bytes,
    }
    report = dict(
        scale=scale.current(), machine=platform.platform(), torch=torch.__version__,
        cuda=torch.cuda.is_available(), seconds=time.perf_counter() - start,
        runs=[summarize(r) for r in results], checks=checks,
        command="COMPANION_SCALE=paper .venv/bin/python benchmarks/diloco_paper_scale.py",
    )
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=1)
    for r in results:
        print(f"{r.spec.label:40s} final loss {r.final_loss:.4f}  peak {r.ledgers[0].peak_bytes:>10,} B  "
              f"total {r.ledgers[0].total_bytes:>14,} B")
    print(json.dumps(checks, indent=1))


if __name__ == "__main__":
    main()
