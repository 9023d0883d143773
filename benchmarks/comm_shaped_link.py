"""Benchmark: a really slow network (Linux traffic control), alpha and beta fitted, the overlap model judged.

1. Message-size sweeps (4 KiB to 64 MiB) of all-reduce, ring reduce-scatter and point-to-point on
   bare gloo loopback and on :class:`companion.comm.ShapedLink` at two rates, each fitted by
   least squares; the fitted beta is set beside the shaper's payload rate.
2. :func:`companion.comm.shaped_experiment.compare`, on jumbo frames: the link fitted in its own
   sweep, the CPU of the payload's all-reduce measured alone, compute calibrated before each
   repeat, and the event model's prediction of sequential and overlapped wall times judged
   against real runs at three rates (communication 0.5x, 1x and 2x compute).

Writes ``benchmarks/results/comm_shaped_link.json`` with its provenance. Needs root (network
namespaces); run it on a quiet machine:

    .venv/bin/python benchmarks/comm_shaped_link.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from companion import comm
from companion.comm import link_fit, shaped_experiment
from companion.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results" / "comm_shaped_link.json"


def sweeps(rates: list[float], repeats: int, largest: int) -> list[dict]:
    out = []
    sizes = link_fit.default_sizes(4 * 1024, largest)
    for rate in [None, *rates]:
        link = None if rate is None else comm.ShapedLink(rate)
        records = comm.launch(link_fit.sweep_worker, 2, sizes, repeats, link=link, timeout_s=1800)
        fits = link_fit.fit_sweep(records[0], 2, 0 if link is None else 2 * link.burst_bytes)
        expected = None if link is None else link.payload_bytes_per_s / comm.BYTES_PER_S_PER_GBPS
        for op, fit in fits.items():
            row = {"link": "bare loopback" if rate is None else f"shaped {rate:g} Gbit/s", "rate_gbit_s": rate,
                   "expected_beta_gbit_s": expected, **fit.as_dict()}
            row["beta_over_expected"] = None if expected is None else fit.beta_gbit_s / expected
            out.append(row)
            print(f"{row['link']:>20} {op:>15}: alpha {1e6 * fit.alpha_s:7.0f} us, beta {fit.beta_gbit_s:7.3f} "
                  f"Gbit/s (expected {expected}), rms residual {fit.rms_rel_residual:.3f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--sweep-repeats", type=int, default=5)
    parser.add_argument("--largest", type=int, default=64 * 2**20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    t0 = time.perf_counter()
    fit_rows = sweeps(args.rates, args.sweep_repeats, args.largest)
    result = shaped_experiment.compare(repeats=args.repeats, sweep_repeats=args.sweep_repeats, timeout_s=1800)
    print(shaped_experiment.markdown_table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "comm_shaped_link", "provenance": provenance(),
                                    "seconds": time.perf_counter() - t0, "fits": fit_rows,
                                    "prediction": result}, indent=1, default=float))
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
