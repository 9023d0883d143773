"""The GPU path of the chapters' workers, in one short run (issue 13's device check).

    python benchmarks/gpu_paths.py --out benchmarks/results/gpu_paths.json          # on a GPU
    python benchmarks/gpu_paths.py --smoke --out /tmp/gpu_paths_smoke.json         # CPU check

One GPU cannot host two NCCL ranks, so this script:

1. **runs the NCCL code path at world size 1**: DiLoCo's workers (data-parallel through DDP,
   DiLoCo, Streaming DiLoCo with 4-bit payloads), CO2's (data-parallel, CO2), Ladder's
   tensor-parallel decoder and the comm chapter's overlap worker (T3's schedules refuse NCCL) under
   ``comm.launch(..., backend="nccl", strict_device=True)``, so any tensor left on the CPU
   fails, and checks each final loss against the same run on the CPU under gloo (a different
   device and backend computing the same seeded run: they agree to float rounding, not bits);
2. **runs the single-process references at a larger scale**: DiLoCo's simulated two-worker
   reference (``companion.diloco.reference.simulate``) and data-parallel, with a GPT of about
   85 M parameters (12 layers, d_model 768) for a few hundred steps on the GPU, and CO2's
   worker with the same model at world size 1 under NCCL.

It writes one JSON file with provenance (command, commit, device, time) and every timing.
``--smoke`` runs the same code at a tiny scale with gloo on the CPU (no NCCL), to check the
script itself on a machine without a GPU; its results are not the GPU results.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from companion import comm
from companion.co2 import worker as co2_worker
from companion.co2.schedule import Schedule
from companion.co2.worker import RunSpec as CO2Spec
from companion.co2.worker import TaskConfig
from companion.comm import overlap as comm_overlap
from companion.comm.results import write_results
from companion.diloco import reference, runner
from companion.diloco.spec import RunSpec
from companion.ladder import workers as ladder_workers

#: Relative difference of final losses allowed between the GPU and the CPU run of one seed.
LOSS_RTOL = 2e-3


def diloco_specs(steps: int) -> list[RunSpec]:
    base = RunSpec(steps=steps, H=10, eval_every=0)
    return [base.with_(method="data_parallel"), base,
            base.with_(n_fragments=2, tau=1, alpha=0.5, bits=4)]


def co2_specs(steps: int) -> list:
    return [CO2Spec(Schedule.data_parallel(), steps, None, name="data-parallel"),
            CO2Spec(Schedule.co2(4), steps, None, name="co2")]


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def world_size_one(backend: str, steps: int) -> dict:
    """Every worker at world size 1 on ``backend`` with the strict device check."""
    d_runs, d_s = _timed(comm.launch, runner.train_many, 1, diloco_specs(steps), backend=backend,
                         strict_device=True, timeout_s=600)
    c_runs, c_s = _timed(comm.launch, co2_worker.run_specs, 1, TaskConfig(), co2_specs(steps),
                         backend=backend, strict_device=True, timeout_s=600)
    ladder_fn, ladder_args = ladder_workers.torchrun_job()
    logits, l_s = _timed(comm.launch, ladder_fn, 1, *ladder_args, backend=backend,
                         strict_device=True, timeout_s=600)
    overlap_fn, overlap_args = comm_overlap.torchrun_job()
    _, o_s = _timed(comm.launch, overlap_fn, 1, *overlap_args, backend=backend, strict_device=True,
                    timeout_s=600)
    return {"backend": backend, "diloco_s": d_s, "co2_s": c_s, "ladder_s": l_s, "overlap_s": o_s,
            "ladder_logit_sums": {str(k): float(v.double().sum()) for k, v in logits[0].items()},
            "diloco_final_loss": [r["eval_losses"][-1] for r in d_runs[0]],
            "co2_final_loss": [r.eval_loss for r in c_runs[0]]}


def large_reference(device: str, steps: int, d_model: int, n_layers: int, n_heads: int,
                    seq_len: int) -> dict:
    """DiLoCo's single-process reference and data-parallel at a larger model size."""
    spec = RunSpec(steps=steps, H=max(steps // 6, 1), d_model=d_model, n_layers=n_layers,
                   n_heads=n_heads, seq_len=seq_len, batch_size=16, inner_lr=4e-4,
                   eval_every=max(steps // 3, 1), eval_seqs=64)
    n_params = sum(p.numel() for p in spec.initial_model().parameters())
    out = {"n_params": n_params, "steps": steps, "H": spec.H}
    for name, s in (("diloco", spec), ("data_parallel", spec.with_(method="data_parallel"))):
        if device == "cuda":
            torch.cuda.synchronize()
        res, wall = _timed(reference.simulate, s, 2, device)
        if device == "cuda":
            torch.cuda.synchronize()
        out[name] = {"eval_steps": res.eval_steps, "eval_losses": res.eval_losses, "wall_s": wall,
                     "s_per_inner_step_per_worker": wall / (2 * steps)}
    return out


def large_co2(backend: str, steps: int, d_model: int, n_layers: int, n_heads: int,
              seq_len: int) -> dict:
    task = TaskConfig(d_model=d_model, n_layers=n_layers, n_heads=n_heads, seq_len=seq_len,
                      batch_size=16, inner_lr=4e-4, eval_seqs=64)
    runs, wall = _timed(comm.launch, co2_worker.run_specs, 1, task, co2_specs(steps),
                        backend=backend, strict_device=True, timeout_s=900)
    return {"steps": steps, "wall_s": wall, "final_loss": [r.eval_loss for r in runs[0]],
            "train_s": [r.train_s for r in runs[0]]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--smoke", action="store_true", help="tiny scale, gloo on the CPU")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or pass --smoke for the CPU check")
    gpu = not args.smoke
    small_steps = 40 if gpu else 8
    big = dict(steps=300, d_model=768, n_layers=12, n_heads=12, seq_len=128) if gpu else \
        dict(steps=4, d_model=32, n_layers=2, n_heads=4, seq_len=16)
    report = {"cpu_gloo": world_size_one("gloo", small_steps)}
    checks = {}
    if gpu:
        report["gpu_nccl"] = world_size_one("nccl", small_steps)
        for key in ("diloco_final_loss", "co2_final_loss"):
            cpu, cuda = report["cpu_gloo"][key], report["gpu_nccl"][key]
            checks[key] = all(math.isclose(a, b, rel_tol=LOSS_RTOL) for a, b in zip(cpu, cuda))
        cpu, cuda = (report[k]["ladder_logit_sums"] for k in ("cpu_gloo", "gpu_nccl"))
        checks["ladder_logits"] = all(math.isclose(cpu[k], cuda[k], rel_tol=LOSS_RTOL, abs_tol=1e-3)
                                      for k in cpu)
    report["large_reference"] = large_reference("cuda" if gpu else "cpu", **big)
    report["large_co2"] = large_co2("nccl" if gpu else "gloo", **big)
    report["checks"] = checks
    report["device"] = torch.cuda.get_device_name(0) if gpu else "cpu (smoke)"
    write_results(args.out, [report], how="benchmarks/gpu_paths.py" + (" --smoke" if args.smoke else ""))
    print({k: v for k, v in checks.items()})
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
