"""``torchrun`` entry point: run a chapter's worker on every node and gather the results.

Usage, on every node (here two "nodes" on one machine)::

    torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d --rdzv-endpoint 127.0.0.1:29500 \\
             --rdzv-id overlap -m companion.comm.torchrun \\
             --job companion.diloco.runner:torchrun_job --out _build/diloco_torchrun.json

``--job module:function`` names a factory that returns ``(worker_fn, args)``: the worker
function :func:`~companion.comm.launch` would run and its arguments, so that
``comm.launch(worker_fn, world_size, *args)`` on one machine gives the same results
(:func:`job_results_by_launch`). ``--job-kwargs`` passes a JSON object to the factory.
"""

from __future__ import annotations

import argparse
import importlib
import json

from .launcher import launch, run_under_torchrun
from .results import to_jsonable


def load_job(name: str, kwargs: dict | None = None):
    """``(worker_fn, args)`` from the factory ``module:function``."""
    module, sep, function = name.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"--job must look like 'package.module:function', got {name!r}")
    factory = getattr(importlib.import_module(module), function)
    fn, args = factory(**(kwargs or {}))
    return fn, tuple(args)


def job_results_by_launch(name: str, world_size: int, kwargs: dict | None = None, timeout_s: float = 300.0):
    """The same job on ``world_size`` processes of this machine (:func:`launch`), as JSON-ready values."""
    fn, args = load_job(name, kwargs)
    return to_jsonable(launch(fn, world_size, *args, timeout_s=timeout_s))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, help="factory module:function returning (worker_fn, args)")
    parser.add_argument("--job-kwargs", default="{}", help="JSON object of keyword arguments for the factory")
    parser.add_argument("--out", required=True, help="JSON file rank 0 writes with every rank's result")
    args = parser.parse_args(argv)
    fn, job_args = load_job(args.job, json.loads(args.job_kwargs))
    run_under_torchrun(fn, *job_args, out=args.out)


if __name__ == "__main__":
    main()
