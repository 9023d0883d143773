"""The back-of-the-envelope test: is a row-parallel GEMM's reduce-scatter longer than the GEMM?

One rank's GEMM ``(M x K) @ (K x N)`` does ``2 M K N`` FLOPs; at ``F`` FLOP/s it takes
``G = 2 M K N / F``.  Its ``M x N`` output of ``b``-byte elements is reduce-scattered over a ring of
``p`` ranks, ``p - 1`` steps of ``b M N / p`` bytes at ``beta`` bytes/s each, so with the latency
neglected ``C_RS = (p - 1) b M N / (p beta)`` and

    C_RS / G = (p - 1) b F / (2 p K beta),

which for bf16 (``b = 2``) is ``(p - 1) F / (p K beta)``: no ``M``, no ``N``.  The reduce-scatter
is the longer of the two when ``K < (p - 1) b F / (2 p beta)``, about ``F / beta`` for bf16; with
``K`` the rank's share of the layer's reduced dimension ``K_full = p K``, that is
``K_full / p < F / beta`` up to the factor ``(p - 1) / p``.

:data:`VENDOR_NODES` gives ``F`` and the NVLink bandwidth of two NVIDIA nodes as NVIDIA's
product pages print them (:data:`VENDOR`: a vendor's figure, a peak no kernel reaches).  The
pages print bf16 tensor-core throughput *with sparsity* (2:4 structured sparsity doubles it), so
the dense rate is half of it; and they print NVLink's bandwidth summed over both directions,
of which a ring's sends use one: halving it is our reading (:data:`OUR_CHOICE`), the same one
the chapter makes for T3's simulated ring (:data:`companion.t3.hardware.PAPER_RING`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .paper import OUR_CHOICE

__all__ = [
    "VENDOR",
    "VendorNode",
    "H100_SXM",
    "H200_SXM",
    "VENDOR_NODES",
    "rs_gemm_ratio",
    "comm_bound_k",
]

#: The status of a number taken from a vendor's datasheet or product page.
VENDOR = "vendor"


@dataclass(frozen=True)
class VendorNode:
    """One GPU of an NVLink node, as its vendor's product page gives it.

    Attributes
    ----------
    name : str
        The product.
    bf16_flops_sparse : float
        Peak bf16 tensor-core FLOP/s as printed, with 2:4 structured sparsity.
    nvlink_bytes_per_s : float
        NVLink bandwidth per GPU as printed, both directions together, bytes/s.
    source : str
        A ``references.bib`` key.
    """

    name: str
    bf16_flops_sparse: float
    nvlink_bytes_per_s: float
    source: str

    def __post_init__(self) -> None:
        if not self.bf16_flops_sparse > 0 or not self.nvlink_bytes_per_s > 0:
            raise ValueError(f"{self.name}: FLOP/s and bandwidth must be > 0")

    @property
    def dense_bf16_flops(self) -> float:
        """Dense bf16 FLOP/s: half the printed figure, which counts 2:4 sparsity."""
        return self.bf16_flops_sparse / 2

    @property
    def link_bytes_per_s(self) -> float:
        """Bytes/s one direction carries, the direction a ring's sends use: half the printed
        figure (our reading, :data:`companion.t3.paper.OUR_CHOICE`)."""
        return self.nvlink_bytes_per_s / 2

    def sources(self) -> tuple[tuple[str, str, str, str], ...]:
        """``(quantity, value, source, status)`` rows, as :data:`companion.t3.HARDWARE_SOURCES`."""
        return (
            ("bf16 tensor core, with sparsity", f"{self.bf16_flops_sparse / 1e12:,.0f} TFLOP/s",
             self.source, VENDOR),
            ("bf16 tensor core, dense", f"{self.dense_bf16_flops / 1e12:,.1f} TFLOP/s",
             "half the sparse figure", VENDOR),
            ("NVLink, both directions", f"{self.nvlink_bytes_per_s / 1e9:,.0f} GB/s", self.source, VENDOR),
            ("NVLink, one direction", f"{self.link_bytes_per_s / 1e9:,.0f} GB/s",
             "half of both directions", OUR_CHOICE),
        )


#: H100 SXM: "BFLOAT16 Tensor Core 1,979 teraFLOPS" (footnote: with sparsity) and
#: "NVIDIA NVLink: 900GB/s" on NVIDIA's H100 product page.
H100_SXM = VendorNode("H100 SXM", 1979e12, 900e9, "nvidia2022h100")

#: H200 SXM: the same two figures on NVIDIA's H200 product page; the H200 is an H100 with
#: more and faster HBM (141 GB, 4.8 TB/s), which this test does not involve.
H200_SXM = VendorNode("H200 SXM", 1979e12, 900e9, "nvidia2023h200")

VENDOR_NODES = (H100_SXM, H200_SXM)


def _check(k: float, p: int, flops: float, link_bytes_per_s: float, bytes_per_element: int) -> None:
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p must be an integer >= 2, got {p!r}")
    if not k > 0 or not flops > 0 or not link_bytes_per_s > 0 or not bytes_per_element > 0:
        raise ValueError("k, flops, link_bytes_per_s and bytes_per_element must be > 0")


def rs_gemm_ratio(k: float, p: int, flops: float, link_bytes_per_s: float, bytes_per_element: int = 2) -> float:
    """``C_RS / G = (p - 1) b F / (2 p K beta)`` for one rank's GEMM with reduced dimension ``k``.

    ``flops`` is the rate the GEMM runs at (the vendor's peak, or peak times an efficiency),
    ``link_bytes_per_s`` the bandwidth a ring step's send gets; latency is neglected.  The
    ratio does not depend on the GEMM's ``M`` or ``N``.
    """
    _check(k, p, flops, link_bytes_per_s, bytes_per_element)
    return (p - 1) * bytes_per_element * flops / (2 * p * k * link_bytes_per_s)


def comm_bound_k(p: int, flops: float, link_bytes_per_s: float, bytes_per_element: int = 2) -> float:
    """The per-rank ``K`` below which the reduce-scatter outlasts the GEMM (``C_RS / G > 1``):
    ``(p - 1) b F / (2 p beta)``."""
    _check(1.0, p, flops, link_bytes_per_s, bytes_per_element)
    return (p - 1) * bytes_per_element * flops / (2 * p * link_bytes_per_s)
