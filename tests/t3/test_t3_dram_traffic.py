"""The DRAM counts of the two baselines (five and three chunk accesses a ring step) and of T3."""

import pytest

from companion.t3 import category_changes, count_dram_traffic, rs_chunk_accesses


@pytest.mark.parametrize("p", [2, 8, 16, 32])
def test_chunk_accesses_per_variant(p):
    steps = p - 1
    assert sum(rs_chunk_accesses(p, "kernel")) == 5 * steps
    # fused reduce-and-forward: three a step, plus the first send's read and the last write
    assert rs_chunk_accesses(p, "fused") == (2 * steps + 1, steps + 1)
    assert sum(rs_chunk_accesses(p, "fused")) == 3 * steps + 2
    assert rs_chunk_accesses(p, "near_memory") == (steps, steps)


def test_chunk_accesses_edge_cases():
    assert rs_chunk_accesses(1, "fused") == (0, 0)
    with pytest.raises(ValueError, match="reduction"):
        rs_chunk_accesses(8, "nccl")
    with pytest.raises(ValueError, match="world_size"):
        rs_chunk_accesses(0)


def test_fused_baseline_bytes():
    m, k, n, p = 1024, 256, 512, 8
    S = 2 * m * n
    fused = count_dram_traffic(m, k, n, p, fused_forward=True)
    base = count_dram_traffic(m, k, n, p)
    assert fused.rs_read == pytest.approx(15 * S / 8) and fused.rs_write == pytest.approx(8 * S / 8)
    assert fused.gemm_read == base.gemm_read and fused.ag_read == base.ag_read
    assert fused.total < base.total
    with pytest.raises(ValueError, match="pick one"):
        count_dram_traffic(m, k, n, p, fused_forward=True, near_memory_reduce=True)


@pytest.mark.parametrize("p", [8, 16, 32])
def test_category_changes_closed_forms(p):
    m, k, n = 2048, 512, 4096
    nmc = count_dram_traffic(m, k, n, p, near_memory_reduce=True)
    kernel = category_changes(count_dram_traffic(m, k, n, p), nmc)
    fused = category_changes(count_dram_traffic(m, k, n, p, fused_forward=True), nmc)
    # the five-access baseline reads three chunks a step to T3's one, at every p
    assert kernel["rs_read_ratio"] == pytest.approx(3.0)
    assert fused["rs_read_ratio"] == pytest.approx(2 + 1 / (p - 1))
    # writes of GEMM (S) + RS: kernel 2(p-1)/p S, fused S, T3 (p-1)/p S
    assert kernel["gemm_rs_write_change"] == pytest.approx((1 + (p - 1) / p) / (1 + 2 * (p - 1) / p) - 1)
    assert fused["gemm_rs_write_change"] == pytest.approx((1 + (p - 1) / p) / 2 - 1)
    for c in (kernel, fused):
        assert c["gemm_read_ratio"] == 1.0 and c["ag_change"] == 0.0
        assert 0 < c["saving"] < 1
    assert fused["saving"] < kernel["saving"]


def test_with_gemm_reads_scales_only_the_gemm_reads():
    from companion.t3 import with_gemm_reads

    base = count_dram_traffic(256, 64, 128, 4)
    more = with_gemm_reads(base, 1.5)
    assert more.gemm_read == pytest.approx(1.5 * base.gemm_read)
    assert more.total - base.total == pytest.approx(0.5 * base.gemm_read)
    assert (more.gemm_write, more.rs_read, more.ag_write) == (base.gemm_write, base.rs_read, base.ag_write)
    with pytest.raises(ValueError, match="factor"):
        with_gemm_reads(base, 0.0)
