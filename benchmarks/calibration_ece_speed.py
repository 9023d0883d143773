"""Speed of ``companion.calibration.ece`` against torchmetrics on 10^6 x 100 probabilities.

Run by hand (never timed in tests)::

    .venv/bin/python benchmarks/calibration_ece_speed.py [--rows 1000000] [--classes 100]

Both get the same float32 matrix (torchmetrics receives a zero-copy tensor view), 15 bins, L1.
Times are medians of 5 calls after a warm-up, with the thread count torch would use by default.
Writes ``benchmarks/results/calibration_ece_speed.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from companion.calibration import ece
from companion.timing import median_time


def make_probs(rows: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random float32 softmax rows ``(rows, classes)`` and int64 labels, built in chunks."""
    rng = np.random.default_rng(seed)
    p = np.empty((rows, classes), dtype=np.float32)
    for s in range(0, rows, 100_000):
        z = rng.standard_normal((min(100_000, rows - s), classes), dtype=np.float32) * 3
        z = np.exp(z - z.max(axis=1, keepdims=True))
        p[s:s + len(z)] = z / z.sum(axis=1, keepdims=True)
    return p, rng.integers(0, classes, size=rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/calibration_ece_speed.json")
    args = parser.parse_args()
    p, y = make_probs(args.rows, args.classes)
    pt, yt = torch.from_numpy(p), torch.from_numpy(y)

    def ours():
        return ece(p, y, 15)

    def peer():
        return float(multiclass_calibration_error(pt, yt, num_classes=args.classes, n_bins=15, norm="l1"))

    v_ours, v_peer = ours(), peer()
    t_ours, t_peer = median_time(ours, repeats=5), median_time(peer, repeats=5)
    result = {
        "rows": args.rows, "classes": args.classes, "dtype": "float32",
        "ece_ours": v_ours, "ece_torchmetrics": v_peer, "abs_difference": abs(v_ours - v_peer),
        "seconds_ours": t_ours, "seconds_torchmetrics": t_peer, "speedup_vs_torchmetrics": t_peer / t_ours,
        "torch_threads": torch.get_num_threads(),
        "provenance": {
            "command": "python benchmarks/calibration_ece_speed.py",
            "git_commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
            "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores (shared with other jobs), "
                       f"numpy {np.__version__}, torch {torch.__version__}",
            "load_average": os.getloadavg(),
        },
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "provenance"}, indent=1))


if __name__ == "__main__":
    main()
