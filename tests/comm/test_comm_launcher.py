"""The launcher: results in rank order, errors and hangs raise fast, nothing survives."""

import os
import threading
import time

import psutil
import pytest

from companion import comm
from companion.comm import selftest


def _descendants() -> set[int]:
    """Our live descendant processes, leaving out multiprocessing's long-lived resource tracker."""
    out = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in " ".join(child.cmdline()):
                continue
        except psutil.NoSuchProcess:
            continue
        out.add(child.pid)
    return out


@pytest.fixture
def no_survivors():
    before = _descendants()
    yield
    deadline = time.monotonic() + 3.0
    while _descendants() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _descendants() - before == set()


def test_exception_in_rank_1_raises_worker_error_fast(no_survivors):
    t0 = time.monotonic()
    with pytest.raises(comm.WorkerError) as info:
        comm.launch(selftest.fail_on_rank, 2, 1, timeout_s=60)
    assert time.monotonic() - t0 < 15
    assert info.value.rank == 1
    assert "ArithmeticError: deliberate failure on rank 1" in info.value.remote_traceback
    assert "fail_on_rank" in info.value.remote_traceback


def test_hung_rank_is_killed_at_the_timeout_with_its_children(no_survivors, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    t0 = time.monotonic()
    # 30 s: on a loaded machine starting two workers (importing torch) alone can take 15 s
    with pytest.raises(TimeoutError, match="did not finish within timeout_s=30"):
        comm.launch(selftest.hang_on_rank, 2, 1, str(pid_file), timeout_s=30)
    elapsed = time.monotonic() - t0
    assert 30 <= elapsed < 45
    grandchild = int(pid_file.read_text())
    time.sleep(0.2)
    assert not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE


def test_dead_worker_is_detected_quickly(no_survivors):
    t0 = time.monotonic()
    with pytest.raises(comm.WorkerError, match="code 7") as info:
        comm.launch(selftest.exit_without_result, 2, 1, timeout_s=60)
    assert info.value.rank == 1
    assert time.monotonic() - t0 < 15


def test_two_concurrent_launches_do_not_collide(no_survivors, capsys):
    """Also: results come in rank order, one thread per rank, and worker prints reach the caller."""
    outcomes = [None, None]

    def run(i):
        try:
            outcomes[i] = comm.launch(selftest.identify, 2, f"hello{i}", timeout_s=60)
        except BaseException as err:  # surfaced by the assertion below
            outcomes[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for outcome in outcomes:
        assert isinstance(outcome, list), outcome
        assert [r["sum"] for r in outcome] == [3.0, 3.0]
        assert [r["rank"] for r in outcome] == [0, 1]
        assert all(r["threads"] == 1 and r["omp"] == "1" for r in outcome)
    pids = {r["pid"] for outcome in outcomes for r in outcome}
    assert len(pids) == 4 and os.getpid() not in pids
    out = capsys.readouterr().out
    for i in range(2):
        assert f"[rank 0] hello{i} from rank 0" in out and f"[rank 1] hello{i} from rank 1" in out


@pytest.mark.parametrize("world_size", [0, -1, 1.5, True])
def test_bad_world_size(world_size):
    with pytest.raises(ValueError, match="world_size"):
        comm.launch(selftest.identify, world_size)


def test_functions_that_cannot_be_sent_are_refused():
    with pytest.raises(ValueError, match="module level"):
        comm.launch(lambda rank, world: rank, 2)
    with pytest.raises(ValueError, match="threads_per_rank"):
        comm.launch(selftest.identify, 2, threads_per_rank=0)
    with pytest.raises(ValueError, match="timeout_s"):
        comm.launch(selftest.identify, 2, timeout_s=0)


def test_run_under_torchrun_needs_torchrun_environment(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(RuntimeError, match="RANK"):
        comm.run_under_torchrun(selftest.identify)
