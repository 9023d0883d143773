"""T3's schedule worker under ``strict_device``: every tensor on ``comm.device()``, results unchanged."""

import torch

from companion.comm.result_shape import both_ways
from companion.t3.experiment import ExperimentSpec, ScheduleRun, schedule_worker

RUNS = (ScheduleRun("sequential", 1, 1.0), ScheduleRun("coarse", 2, 1.0), ScheduleRun("fine", 2, 1.0, contention=0.5))


def test_schedule_worker_gives_the_same_blocks_and_spans_under_strict_placement():
    spec = ExperimentSpec(m=32, k=16, n=8, runs=RUNS, repeats=1, latency_s=0.0, return_outputs=True)
    plain, strict = both_ways(schedule_worker, 2, spec, timeout_s=120)
    for p, s in zip(plain, strict):
        assert p["out_bytes"] == s["out_bytes"]
        for run_p, run_s in zip(p["runs"], s["runs"]):
            torch.testing.assert_close(run_s["output"], run_p["output"], rtol=0, atol=0)
            assert run_s["max_abs_error"] == run_p["max_abs_error"] < 1e-4
            # timings differ from run to run; their structure does not
            assert [len(g) for g in run_s["group_s"]] == [len(g) for g in run_p["group_s"]]
            names = [sorted((sp.name, sp.kind) for sp in spans) for spans in run_p["spans"]]
            assert [sorted((sp.name, sp.kind) for sp in spans) for spans in run_s["spans"]] == names
