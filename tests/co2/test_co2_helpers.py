"""Book helpers: anchor traces, clipped anchor paths, utilisation sweeps, paper constants."""

import numpy as np
import pytest
import torch

from companion.co2.bookkeeping import anchor_path, trace_anchors
from companion.co2.outer import OuterConfig, clip_outer_momentum_, reference_code_clip
from companion.co2.overlap import utilization_vs_bandwidth
from companion.co2.paper import PAPER_QUALITY, paper_quality
from companion.co2.schedule import Schedule
from companion.co2.sync import SoloNet


def test_trace_anchors_sync_and_stale():
    assert trace_anchors(Schedule.local_sgd(2), [1, 2]) == [1.0, 3.0, 3.0]
    assert trace_anchors(Schedule.co2(2), [1, 2]) == [0.0, 1.0, 3.0]
    with pytest.raises(ValueError, match="moves is empty"):
        trace_anchors(Schedule.co2(2), [])


def test_anchor_path_clip_and_reference_clip():
    rounds = [torch.tensor([3.0, -3.0])] * 3
    free = anchor_path(rounds, outer_lr=1.0, outer_momentum=0.5)
    # m: 3, 4.5, 5.25 -> anchors −3, −7.5, −12.75 on the first entry
    torch.testing.assert_close(free[:, 0], torch.tensor([-3.0, -7.5, -12.75]))
    ref = anchor_path(rounds, outer_lr=1.0, outer_momentum=0.5, clip=reference_code_clip,
                      clip_threshold=1.0)
    assert torch.equal(ref, free)
    ours = anchor_path(rounds, outer_lr=1.0, outer_momentum=0.5, clip=clip_outer_momentum_,
                       clip_threshold=1.0)
    torch.testing.assert_close(ours[:, 0], torch.tensor([-1.0, -2.0, -3.0]))
    with pytest.raises(ValueError, match="empty"):
        anchor_path([], outer_lr=1.0, outer_momentum=0.0)


def test_utilization_vs_bandwidth_orders_methods():
    util = utilization_vs_bandwidth(np.logspace(5, 9, 9), n_params=1e6, bytes_per_param=4,
                                    step_s=0.01, local_steps=8, bucketed=False)
    for c, l, d in zip(util["co2"], util["local_sgd"], util["data_parallel"]):
        assert 0 < d <= l <= c <= 1
    assert util["co2"][-1] == 1.0 and util["data_parallel"][0] < 0.01
    # bucketed data-parallel hides a short all-reduce behind its backward pass and then beats
    # synchronous local SGD (which hides nothing): at 1e10 B/s, c = 8e6 / 1e10 = 0.8 ms < 2/3 x 10 ms
    bucketed = utilization_vs_bandwidth([1e10], n_params=1e6, bytes_per_param=4, step_s=0.01,
                                        local_steps=8)
    assert bucketed["data_parallel"][0] == 1.0 > bucketed["local_sgd"][0]


def test_paper_quality_and_solo_net():
    assert paper_quality("gpt2_small_ppl_no_penalty") > paper_quality("gpt2_small_ppl_co2")
    assert all(isinstance(src, str) and src for _, src in PAPER_QUALITY.values())
    with pytest.raises(ValueError, match="unknown paper constant"):
        paper_quality("ppl")
    net = SoloNet()
    t = torch.ones(2)
    assert net.all_reduce(t, async_op=True).wait() and net.all_reduce(t) is None
    assert torch.equal(t, torch.ones(2))
    with net.compute("x"):
        pass
    OuterConfig()  # defaults are valid
