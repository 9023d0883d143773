"""The a/c sweep: the delay-only link, one small sweep on real processes, and the stored result."""

import json
import time

import pytest
import torch

from companion import comm
from companion.ladder import ac_sweep
from companion.ladder.communicators import DelayOnlyLink


def test_delay_only_link_serialises_all_reduces_and_moves_no_data():
    link = comm.Link(2e-3, 1e15)  # 2 (p - 1) alpha = 4 ms per all-reduce at p = 2
    net = DelayOnlyLink(link, 2)
    x = torch.ones(4)
    t0 = time.perf_counter()
    first = net.all_reduce(x, async_op=True)
    second = net.all_reduce(x, async_op=True)
    # the second waits for the link: it starts when the first is done
    assert second.start_s == pytest.approx(first.done_s)
    assert first.done_s - first.start_s == pytest.approx(link.allreduce_time(16, 2))
    second.wait()
    assert time.perf_counter() - t0 >= 2 * link.allreduce_time(16, 2)
    assert torch.equal(x, torch.ones(4)) and net.n_all_reduces == 2
    with pytest.raises(ValueError, match="world_size must be an int >= 2"):
        DelayOnlyLink(link, 1)


def test_a_small_sweep_has_every_ratio_variant_and_launch():
    settings = dict(ac_sweep.SETTINGS, d_model=32, n_heads=4, n_new=3, repeats=1, launches=2)
    res = ac_sweep.sweep((2.0, 0.5), settings, timeout_s=120)
    json.dumps(res)  # storable as it is
    assert [row["ratio"] for row in res["rows"]] == [2.0, 0.5]
    for row in res["rows"]:
        assert set(row["variants"]) == {"standard", "ladder", "parallel", "no-comm"}
        assert all(len(v["speedup_per_launch"]) == 2 for v in row["variants"].values())
        assert row["variants"]["standard"]["speedup"] == 1.0
        v = row["variants"]
        assert row["effective_ratio"] == pytest.approx(
            ac_sweep.effective_ratio(v["standard"]["median_step_s"], v["no-comm"]["median_step_s"]))
        # the modelled all-reduce lasts ratio x the calibrated c, launch by launch
        for a, c in zip(row["allreduce_s"], row["module_compute_s"]):
            assert a == pytest.approx(row["ratio"] * c)
    assert len(res["load_average_per_launch"]) == 2
    with pytest.raises(ValueError, match="positive numbers"):
        ac_sweep.sweep((), settings)


def test_the_stored_sweep_names_its_source():
    stored = ac_sweep.load()
    assert stored["ratios"] == list(ac_sweep.RATIOS)
    prov = stored["provenance"]
    assert prov["command"] == "python -m companion.ladder.ac_sweep"
    assert {"git_commit", "device", "date_utc", "load_average", "load_average_before"} <= set(prov)
    with pytest.raises(ValueError, match="no_comm_step_s must be > 0"):
        ac_sweep.effective_ratio(1.0, 0.0)
    with pytest.raises(FileNotFoundError, match="python -m companion.ladder.ac_sweep"):
        ac_sweep.load("/nonexistent/ac_sweep.json")
