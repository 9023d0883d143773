"""The shaped link: the kernel really throttles gloo, bad input is refused, nothing survives."""

import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from companion import comm
from companion.comm import selftest, shaped_link
from companion.comm.shaped_link import ShapedLink

needs_shaping = pytest.mark.skipif(shaped_link.support_problem() is not None,
                                   reason=f"no shaped link here: {shaped_link.support_problem()}")


def _namespaces(started_before: float) -> set[int]:
    """The network namespaces (by inode) of the processes that started before ``started_before``.

    A namespace's inode can be reused by one that a parallel test makes later; its processes
    are younger than ours.
    """
    out = set()
    for proc in psutil.process_iter():
        try:
            if proc.create_time() < started_before:
                out.add(os.stat(f"/proc/{proc.pid}/ns/net").st_ino)
        except (FileNotFoundError, PermissionError, ProcessLookupError, psutil.Error):
            pass
    return out


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def leaves_nothing(tmp_path, monkeypatch):
    """Every network built during the test (here or in a child process) is gone afterwards.

    Networks record their holders in a registry file, so concurrent tests (pytest-xdist) that
    build networks of their own do not confuse the check.
    """
    registry = tmp_path / "registry"
    registry.touch()
    monkeypatch.setenv(shaped_link.REGISTRY_ENV, str(registry))
    yield
    built = [tuple(map(int, line.split())) for line in registry.read_text().splitlines()]
    assert built, "the test built no network"
    ended = time.time()
    deadline = time.monotonic() + 5.0
    while True:
        alive = [pid for pid, _ in built if _running(pid)]
        left = {ino for _, ino in built} & _namespaces(ended)
        if (not alive and not left) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not alive, f"namespace holders survived: {alive}"
    assert not left, f"network namespaces survived: {left}"


@pytest.mark.parametrize("rate", [0, -1.0, math.nan, math.inf, True, "1"])
def test_rate_must_be_positive_and_finite(rate):
    with pytest.raises(ValueError, match="rate_gbit_s must be a finite number > 0"):
        ShapedLink(rate)


def test_burst_below_one_frame_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"burst_bytes must be an integer >= one frame \(mtu \+ 14 = 1514"):
        ShapedLink(1.0, burst_bytes=1500)


def test_mtu_out_of_range():
    with pytest.raises(ValueError, match="mtu must be an integer in"):
        ShapedLink(1.0, mtu=100)


def test_wire_efficiency_counts_headers():
    # a full 1500-byte IP packet carries 1448 payload bytes (20 IP + 32 TCP with timestamps)
    # and costs 1514 bytes of tokens (14 bytes of Ethernet header)
    assert ShapedLink(1.0).wire_efficiency == pytest.approx(1448 / 1514)
    assert ShapedLink(2.0).payload_bytes_per_s == pytest.approx(2 * 1.25e8 * 1448 / 1514)


def test_launch_refuses_a_model_or_nccl_as_link():
    with pytest.raises(ValueError, match="a comm.Link is a model"):
        comm.launch(selftest.identify, 2, link=comm.Link(1e-3, 1e8))
    with pytest.raises(ValueError, match="needs backend='gloo'"):
        comm.launch(selftest.identify, 2, link=ShapedLink(1.0), backend="nccl")


def test_unsupported_machine_raises_permission_error_naming_the_fallback(monkeypatch):
    monkeypatch.setattr(shaped_link, "support_problem", lambda: "needs root (test)")
    with pytest.raises(PermissionError, match="needs root \\(test\\).*ModelledLink"):
        comm.launch(selftest.identify, 2, link=ShapedLink(1.0))


@needs_shaping
def test_gloo_is_really_throttled_and_still_correct(leaves_nothing):
    nbytes = 2 * 1024 * 1024
    link = ShapedLink(0.25)
    shaped = comm.launch(selftest.shaped_probe, 2, nbytes, link=link, timeout_s=60)
    bare = comm.launch(selftest.shaped_probe, 2, nbytes, timeout_s=60)
    # each rank of a two-rank ring all-reduce sends n bytes: n / payload rate, no less
    floor = nbytes / link.payload_bytes_per_s
    for r in shaped:
        assert r["value"] == 3.0 and r["ifname"] == "eth0"
        assert r["all_reduce_s"] > 0.9 * floor
    assert shaped[0]["netns"] != shaped[1]["netns"] != os.stat("/proc/self/ns/net").st_ino
    assert max(r["all_reduce_s"] for r in bare) < 0.5 * floor


@needs_shaping
def test_nothing_survives_an_exception_in_a_rank(leaves_nothing):
    with pytest.raises(comm.WorkerError):
        comm.launch(selftest.fail_on_rank, 2, 1, link=ShapedLink(1.0), timeout_s=60)


@needs_shaping
def test_nothing_survives_a_timeout(leaves_nothing, tmp_path):
    with pytest.raises(TimeoutError):
        comm.launch(selftest.hang_on_rank, 2, 1, str(tmp_path / "pid"), link=ShapedLink(1.0), timeout_s=8)


def _hang_in_a_child(ready) -> subprocess.Popen:
    """A child Python that launches two ranks over a shaped link, one of them hanging; wait till they run."""
    # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not ignored when it
    # started; a shell runs background jobs with SIGINT ignored, so restore it explicitly (a
    # user pressing Ctrl-C at a terminal has it)
    script = textwrap.dedent(f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from companion import comm
        from companion.comm import selftest
        if __name__ == "__main__":
            comm.launch(selftest.hang_on_rank, 2, 1, {str(ready)!r}, link=comm.ShapedLink(1.0), timeout_s=120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ready.exists(), "the workers never started"
    return proc


@needs_shaping
def test_nothing_survives_ctrl_c(leaves_nothing, tmp_path):
    proc = _hang_in_a_child(tmp_path / "pid")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) != 0


@needs_shaping
def test_nothing_survives_the_caller_being_killed(leaves_nothing, tmp_path):
    proc = _hang_in_a_child(tmp_path / "pid")
    proc.kill()
    proc.wait(timeout=10)


@needs_shaping
def test_the_unprivileged_path_builds_the_network_in_a_user_namespace(leaves_nothing, monkeypatch):
    # as root we can take the path a laptop user takes: `unshare -rn`, then the ranks join that
    # user namespace before their network namespaces (seen working as uid 65534 on this kind of
    # machine; a test cannot run as another user here, the interpreter lives under /root)
    if not shaped_link._user_namespaces_work():
        pytest.skip("user namespaces are not permitted here")
    monkeypatch.setattr(shaped_link.os, "geteuid", lambda: 1000)
    nbytes = 1024 * 1024
    link = ShapedLink(0.25)
    out = comm.launch(selftest.shaped_probe, 2, nbytes, link=link, timeout_s=60)
    assert [r["value"] for r in out] == [3.0, 3.0]
    assert min(r["all_reduce_s"] for r in out) > 0.9 * (nbytes - link.burst_bytes) / link.payload_bytes_per_s
