"""comm's chapter workers under ``strict_device``: nothing is left off ``comm.device()``.

Each worker runs twice at a tiny scale, without and with the placement check: the run with it
must not raise, its exact results must equal the plain run's, and its timings must have the
same structure (same spans, keys and counts).
"""

import pytest
import torch

from companion import comm
from companion.comm import selftest
from companion.comm.chapter import chapter_worker
from companion.comm.link_fit import sweep_worker
from companion.comm.overlap import OverlapSetting
from companion.comm.result_shape import assert_same_shape, both_ways
from companion.comm.shaped_experiment import compute_worker, judged_worker

SIZES = [64, 128]  # bytes per rank: divisible by 4 * world size


def test_chapter_worker_checks_equal_and_overlap_spans_match():
    settings = [OverlapSetting("link", comm.Link(1e-4, 1e8), 256), OverlapSetting("bare", None, 256)]
    plain, strict = both_ways(chapter_worker, 2, settings, 2, 1, 2, 256, 0)
    for p, s in zip(plain, strict):
        assert s["checks"] == p["checks"]  # ring and quantised collectives: same numbers
    assert_same_shape(plain, strict)
    assert {r["mode"] for r in strict[0]["overlap"]} == {"compute_only", "sequential", "overlapped"}


def test_sweep_compute_and_judged_workers_match():
    for fn, args in ((sweep_worker, (SIZES, 1)), (compute_worker, (2, 1, 2, 16)),
                     (judged_worker, (256, 2, 1, 2, 16, SIZES, 1))):
        plain, strict = both_ways(fn, 2, *args)
        assert_same_shape(plain, strict)


def test_ring_collectives_equal():
    plain, strict = both_ways(selftest.ring_collectives, 3, 2, 4, 0)
    for p, s in zip(plain, strict):
        for key in p:
            torch.testing.assert_close(s[key], p[key], rtol=0, atol=0)


def test_modelled_link_values_equal_and_timings_match():
    plain, strict = both_ways(selftest.modelled_link_checks, 2, 2e-3, 2e7, 25_000)
    exact = ("a", "b", "gathered", "broadcast", "reduce_scatter", "p2p_value", "quantized_sum", "exact_sum",
             "bytes_after_allreduce", "bytes_sent", "bare_bytes")
    for p, s in zip(plain, strict):
        for key in exact:
            if isinstance(p[key], torch.Tensor):
                torch.testing.assert_close(s[key], p[key], rtol=0, atol=0)
            else:
                assert s[key] == p[key], key
    assert_same_shape(plain, strict)


def test_a_seeded_tensor_without_device_is_caught():
    with pytest.raises(comm.WorkerError) as info:
        comm.launch(selftest.seeded_without_device, 2, strict_device=True, timeout_s=60)
    assert "DevicePlacementError" in info.value.remote_traceback


def test_clock_offsets_on_one_machine_are_within_their_bound():
    for offset, error in comm.launch(selftest.clock_offsets, 3, 4, strict_device=True, timeout_s=60):
        assert 0 < error < 0.05
        assert abs(offset) <= error  # one machine: perf_counter is one clock, the offset is 0


def test_clock_offset_refuses_bad_rounds():
    from companion.comm.clock import left_clock_offset

    with pytest.raises(ValueError, match="rounds"):
        left_clock_offset(0)
