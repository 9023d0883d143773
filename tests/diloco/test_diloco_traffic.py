"""Traffic per rank of three ways to sum outer gradients: the formulas, and counts from real gloo ranks."""

import pytest

from companion.diloco import traffic, traffic_measure


def test_payload_is_half_a_byte_a_value_plus_a_scale_a_block():
    assert traffic.payload_bytes(4096, 64) == 4096 // 2 + 4 * 64
    assert traffic.payload_bytes(65, 64) == 2 * 32 + 2 * 4  # the last block padded


def test_break_even_against_the_closed_form():
    # (M - 1) (n/2 + 4 n/B) = 2 (M - 1) 4 n / M  <=>  M = 16 / (1 + 8 / B)
    for B in (16, 64, 256):
        assert traffic.break_even_workers(B * 100, B) == pytest.approx(16 / (1 + 8 / B))
    M_star = traffic.break_even_workers(4096)
    below, above = int(M_star), int(M_star) + 1
    n = 4096 * 3 * 5 * 7 * 13  # divisible by every M tried below
    assert traffic.per_rank_bytes("all_gather_4bit", n, 14) < traffic.per_rank_bytes("all_reduce_fp32", n, 14)
    assert traffic.per_rank_bytes("all_gather_4bit", n, 15) > traffic.per_rank_bytes("all_reduce_fp32", n, 15)
    assert (below, above) == (14, 15)


def test_bad_input():
    with pytest.raises(ValueError, match="scheme"):
        traffic.per_rank_bytes("tree", 64, 2)
    with pytest.raises(ValueError, match="divisible"):
        traffic.per_rank_bytes("all_reduce_fp32", 65, 2)
    with pytest.raises(ValueError, match="block_size"):
        traffic.payload_bytes(64, 3)


def test_counted_bytes_of_real_collectives_equal_the_formulas():
    rows = traffic_measure.measure((3,), n=64 * 3 * 4)
    assert len(rows) == 3 * 3
    for r in rows:
        assert r["same_result"], r
        assert r["sent"] == traffic.per_rank_bytes(r["scheme"], r["n"], r["M"]), r
    handed = {r["scheme"]: r["handed"] for r in rows if r["rank"] == 0}
    assert handed["all_reduce_fp32"] == {"all_reduce": 4 * 768}
    assert handed["all_gather_4bit"] == {"all_gather": 768 // 2 + 4 * 12}


def test_measure_inner_step_s_times_a_real_step_and_refuses_bad_counts():
    from companion.diloco import experiments, runner

    spec = experiments.streaming_specs()[1]
    step_s = runner.measure_inner_step_s(spec, steps=2, warmup=1)
    assert 0 < step_s < 5.0
    with pytest.raises(ValueError, match="steps must be"):
        runner.measure_inner_step_s(spec, steps=0)
