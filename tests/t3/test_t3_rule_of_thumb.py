"""The rule of thumb C_RS / G = (p - 1) b F / (2 p K beta) against the package's own time models."""

import pytest

from companion.comm import Link
from companion.t3 import PAPER_GPU, PAPER_RING, paper_scale_table
from companion.t3.paper import OUR_CHOICE
from companion.t3.rule_of_thumb import (
    H100_SXM,
    H200_SXM,
    VENDOR,
    VENDOR_NODES,
    VendorNode,
    comm_bound_k,
    rs_gemm_ratio,
)


@pytest.mark.parametrize("p", [2, 4, 8, 16])
@pytest.mark.parametrize("k", [128, 1000, 4096])
def test_ratio_is_the_ring_over_the_gemm_for_every_m(p, k):
    flops, beta, n = 1e15, 4e11, 3072
    ring = Link(latency_s=0.0, bandwidth_bytes_per_s=beta)
    for m in (1, 64, 2048, 100_000):
        gemm = 2 * m * k * n / flops
        rs = ring.reduce_scatter_time(2 * m * n, p)
        assert rs / gemm == pytest.approx(rs_gemm_ratio(k, p, flops, beta), rel=1e-12)


def test_threshold_is_where_the_ratio_is_one():
    for node in VENDOR_NODES:
        f, b = node.dense_bf16_flops, node.link_bytes_per_s
        for p in (2, 8, 64):
            k_star = comm_bound_k(p, f, b)
            assert rs_gemm_ratio(k_star, p, f, b) == pytest.approx(1.0)
            assert rs_gemm_ratio(0.9 * k_star, p, f, b) > 1 > rs_gemm_ratio(1.1 * k_star, p, f, b)
            assert k_star < f / b  # (p - 1) / p of F / beta for bf16


def test_fp32_doubles_the_ratio():
    assert rs_gemm_ratio(512, 8, 1e15, 1e11, 4) == pytest.approx(2 * rs_gemm_ratio(512, 8, 1e15, 1e11))


def test_rule_matches_the_paper_scale_table_up_to_latency():
    # the table's C_RS / G comes from the roofline GEMM and the alpha-beta ring, with latency
    flops = PAPER_GPU.peak_flops * PAPER_GPU.gemm_efficiency
    for row in paper_scale_table():
        s = row.sublayer
        rule = rs_gemm_ratio(s.k, s.tp, flops, PAPER_RING.bandwidth_bytes_per_s)
        assert rule <= row.comm_ratio < 1.05 * rule


def test_vendor_nodes():
    assert H100_SXM.dense_bf16_flops == pytest.approx(989.5e12)
    assert H100_SXM.link_bytes_per_s == pytest.approx(450e9)
    assert (H200_SXM.dense_bf16_flops, H200_SXM.link_bytes_per_s) == (
        H100_SXM.dense_bf16_flops, H100_SXM.link_bytes_per_s)
    statuses = [row[3] for row in H100_SXM.sources()]
    assert statuses == [VENDOR, VENDOR, VENDOR, OUR_CHOICE]
    with pytest.raises(ValueError):
        VendorNode("broken", 0.0, 1.0, "x")
    with pytest.raises(ValueError):
        rs_gemm_ratio(512, 1, 1e15, 1e11)
    with pytest.raises(ValueError):
        comm_bound_k(8, 1e15, 0.0)
