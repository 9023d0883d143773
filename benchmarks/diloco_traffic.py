"""Benchmark: bytes each rank hands to gloo collectives and to ``isend``, for three ways to sum outer gradients.

At each ``M`` of ``--workers`` it launches ``M`` real gloo processes (``companion.comm.launch``)
running :func:`companion.diloco.traffic_measure.traffic_worker` on an ``--n``-value vector, and
writes every rank's counted bytes, beside the formulas of :mod:`companion.diloco.traffic`, to
``benchmarks/results/diloco_traffic.json`` with provenance. The chapter (diloco/02) shows the file
and checks that every count equals its formula.

    .venv/bin/python benchmarks/diloco_traffic.py --workers 2 4 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from companion.diloco import traffic, traffic_measure
from companion.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results" / "diloco_traffic.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = traffic_measure.measure(tuple(args.workers), n=args.n, block_size=args.block_size, timeout_s=600)
    for r in rows:
        r["formula"] = traffic.per_rank_bytes(r["scheme"], r["n"], r["M"], r["block_size"])
    payload = {"benchmark": "diloco_traffic", "provenance": provenance(), "seconds": time.perf_counter() - t0,
               "n": args.n, "block_size": args.block_size, "workers": args.workers, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    bad = [r for r in rows if r["sent"] != r["formula"] or not r["same_result"]]
    print(f"{len(rows)} rows, {len(bad)} disagreeing with the formula; wrote {args.out}")


if __name__ == "__main__":
    main()
