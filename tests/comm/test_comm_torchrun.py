"""Two torchrun agents on this machine as two nodes give the same results as comm.launch."""

import json
import os
import socket
import subprocess
import sys

import pytest

from companion.comm import torchrun

#: Jobs whose results depend only on the seed: torchrun must give exactly what launch gives.
JOBS = ["companion.diloco.runner:torchrun_job", "companion.co2.experiments:torchrun_job",
        "companion.ladder.workers:torchrun_job"]
#: Jobs whose results are timings: they must run on two torchrun nodes (T3 checks its own blocks).
TIMED_JOBS = ["companion.t3.experiment:torchrun_job", "companion.comm.overlap:torchrun_job"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deterministic(result):
    """Drop what depends on the clock (spans, times); keep values, losses and bytes."""
    if isinstance(result, dict):
        return {k: _deterministic(v) for k, v in result.items()
                if not (k in ("spans", "step_end_s", "link_waits_s") or k.endswith("_s"))}
    if isinstance(result, list):
        return [_deterministic(v) for v in result]
    return result


def _two_node_run(job: str, out) -> dict:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "overlap-test",
           "-m", "companion.comm.torchrun", "--job", job, "--out", str(out)]
    agents = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    try:
        logs = [a.communicate(timeout=240)[0] for a in agents]
    finally:
        for a in agents:
            a.kill()
    assert all(a.returncode == 0 for a in agents), "\n".join(logs)
    return json.loads(out.read_text())


@pytest.mark.parametrize("job", JOBS)
def test_two_torchrun_nodes_equal_launch(job, tmp_path):
    written = _two_node_run(job, tmp_path / "out.json")
    assert written["world_size"] == 2 and written["how"].startswith("torchrun, 2 ranks, gloo")
    assert written["provenance"]["git_commit"]
    by_launch = torchrun.job_results_by_launch(job, 2)
    assert _deterministic(written["results"]) == _deterministic(by_launch)


@pytest.mark.parametrize("job", TIMED_JOBS)
def test_timed_jobs_run_on_two_torchrun_nodes(job, tmp_path):
    written = _two_node_run(job, tmp_path / "out.json")
    assert written["world_size"] == 2
    launched = torchrun.job_results_by_launch(job, 2)
    assert _structure(written["results"]) == _structure(launched)


def _structure(value):
    """Keys and lengths, not values: what two runs of a timed job share."""
    if isinstance(value, dict):
        return {k: _structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [len(value)] + ([_structure(value[0])] if value else [])
    return type(value).__name__


def test_bad_job_names_the_form():
    with pytest.raises(ValueError, match="package.module:function"):
        torchrun.load_job("companion.diloco.runner")
