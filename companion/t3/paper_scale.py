"""The paper-scale table: T3's communication-heavy sublayers on the simulated GPU and ring.

Each sublayer is a row-parallel GEMM whose ``(M, d_model)`` output is all-reduced (ring
reduce-scatter, then ring all-gather); T3 fuses the GEMM with the reduce-scatter, the
all-gather stays as it was.  The four sublayers per model (T3 §5.2):

- forward: attention output projection (OP, ``K = d/p``) and FC-2 (``K = d_ff/p``);
- backward: the input-gradient GEMMs of FC-1 (``K = d_ff/p``, twice that for a gated FFN) and
  of the attention input projection (IP, ``K = 3d/p``), the mirror images of FC-2 and OP.

Architectures: T-NLG (Microsoft, 2020: 78 layers, d = 4256, 28 heads), MT-NLG (Smith et al.
2022: 105 layers, d = 20480, 128 heads), PaLM-540B (Chowdhery et al. 2022: 118 layers,
d = 18432, 48 heads, d_ff = 4d with SwiGLU).  Tensor-parallel degrees as in T3 §5.2: 8 and 16
for T-NLG, 32 for MT-NLG and PaLM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from companion.comm import Link

from .dram_traffic import count_dram_traffic
from .hardware import PAPER_GPU, PAPER_RING, GPUModel
from .pipeline_model import chunk_times, ideal_overlap_time, pipelined_time

__all__ = [
    "TransformerShape",
    "PAPER_MODELS",
    "PAPER_TP_DEGREES",
    "SOFTWARE_CONTENTION",
    "SOFTWARE_COMM_CUS",
    "PAPER_REPORTED",
    "Sublayer",
    "SublayerResult",
    "sublayers",
    "evaluate_sublayer",
    "paper_scale_table",
    "geomean",
]


@dataclass(frozen=True)
class TransformerShape:
    """The widths that size a transformer layer's GEMMs."""

    name: str
    d_model: int
    d_ff: int
    gated_ffn: bool = False  # SwiGLU's FC-1 has two d_model x d_ff matrices


PAPER_MODELS = (
    TransformerShape("T-NLG", d_model=4256, d_ff=4 * 4256),
    TransformerShape("MT-NLG", d_model=20480, d_ff=4 * 20480),
    TransformerShape("PaLM", d_model=18432, d_ff=4 * 18432, gated_ffn=True),
)

#: T3 §5.2: T-NLG at TP 8 and 16; the ~500B models at TP 32.
PAPER_TP_DEGREES = {"T-NLG": (8, 16), "MT-NLG": (32,), "PaLM": (32,)}

#: What T3 reports (Pati et al. 2024: abstract, §6.1, §6.2, §6.4), as fractions.
PAPER_REPORTED = {
    "t3_speedup_geomean": 0.30,  # T3 with memory-controller arbitration, Mega-GPT-2 and T-NLG sublayers
    "t3_speedup_max": 0.47,
    "t3_plain_speedup_geomean": 0.20,  # T3 without arbitration
    "ideal_speedup_geomean": 0.35,  # ideal GEMM / reduce-scatter overlap
    "ideal_speedup_max": 0.50,
    "large_models_speedup_geomean": 0.29,  # GPT-3, PaLM, MT-NLG at TP 32
    "data_movement_geomean": 0.22,
    "data_movement_max": 0.36,
}

#: CUs given to the collective in T3 Fig. 6, out of the simulated GPU's 80.
SOFTWARE_COMM_CUS = 16

#: (gamma_g, gamma_c) of a software fine-grained overlap whose reduce-scatter runs on 16 of the
#: GPU's 80 CUs: T3 Fig. 6 reports the GEMM on the remaining 64 CUs ~21 % slower and the
#: collective ~7 % slower.
SOFTWARE_CONTENTION = (0.21, 0.07)


@dataclass(frozen=True)
class Sublayer:
    """One rank's GEMM ``(m x k) @ (k x n)`` whose output is reduce-scattered over ``tp`` ranks."""

    model: str
    name: str
    tp: int
    m: int
    k: int
    n: int


def sublayers(shape: TransformerShape, tp: int, tokens: int) -> list[Sublayer]:
    """The four all-reduce-bound sublayers of one layer of ``shape`` at tensor parallelism ``tp``."""
    if tp < 1 or shape.d_model % tp or shape.d_ff % tp:
        raise ValueError(f"tp={tp} must divide d_model={shape.d_model} and d_ff={shape.d_ff} of {shape.name}")
    if tokens < 1:
        raise ValueError(f"tokens must be >= 1, got {tokens}")
    d, f = shape.d_model, shape.d_ff
    fc1_width = 2 * f if shape.gated_ffn else f
    return [
        Sublayer(shape.name, "OP fwd", tp, tokens, d // tp, d),
        Sublayer(shape.name, "FC-2 fwd", tp, tokens, f // tp, d),
        Sublayer(shape.name, "FC-1 bwd", tp, tokens, fc1_width // tp, d),
        Sublayer(shape.name, "IP bwd", tp, tokens, 3 * d // tp, d),
    ]


@dataclass(frozen=True)
class SublayerResult:
    """Modelled times (seconds) and DRAM bytes of one sublayer; speedups against sequential."""

    sublayer: Sublayer
    gemm_s: float
    reduce_scatter_s: float
    all_gather_s: float
    sequential_s: float
    software_s: float
    t3_s: float
    ideal_s: float
    bytes_baseline: float
    bytes_t3: float

    @property
    def comm_ratio(self) -> float:
        """``C_RS / G``."""
        return self.reduce_scatter_s / self.gemm_s

    @property
    def t3_speedup(self) -> float:
        return self.sequential_s / self.t3_s

    @property
    def software_speedup(self) -> float:
        return self.sequential_s / self.software_s

    @property
    def ideal_speedup(self) -> float:
        return self.sequential_s / self.ideal_s

    @property
    def traffic_reduction(self) -> float:
        """Fraction of DRAM bytes T3 saves: ``1 - bytes_t3 / bytes_baseline``."""
        return 1.0 - self.bytes_t3 / self.bytes_baseline


def evaluate_sublayer(sub: Sublayer, gpu: GPUModel = PAPER_GPU, link: Link = PAPER_RING) -> SublayerResult:
    """Model one sublayer four ways: sequential, software fine-grained, T3, ideal overlap.

    1. ``G`` from the GPU roofline, ``C_RS`` and ``C_AG`` from the ring's alpha-beta model;
       the all-gather is never overlapped.
    2. Sequential: ``G + C_RS + C_AG``, the reduce-scatter at the larger of its link time and
       its DRAM time with kernel reductions.
    3. Software fine-grained: the ring pipeline with the CU-sharing slowdowns of
       :data:`SOFTWARE_CONTENTION` and the last reduction left exposed.
    4. T3: the ring pipeline with reductions near memory (no exposed reduction, no CU
       sharing), bounded below by the DRAM time of the GEMM and reduce-scatter bytes together.
    """
    e, p, dram = gpu.bytes_per_element, sub.tp, gpu.dram_bytes_per_s
    out_bytes = e * sub.m * sub.n
    gemm = gpu.gemm_time(sub.m, sub.k, sub.n)
    base = count_dram_traffic(sub.m, sub.k, sub.n, p, bytes_per_element=e)
    nmc = count_dram_traffic(sub.m, sub.k, sub.n, p, bytes_per_element=e, near_memory_reduce=True)
    rs = max(link.reduce_scatter_time(out_bytes, p), (base.rs_read + base.rs_write) / dram)
    ag = link.allgather_time(out_bytes, p)
    g, x = chunk_times(gemm, rs, p)
    # the last received chunk is added by a kernel: read two chunks, write one
    last_reduce = 3 * out_bytes / p / dram if p > 1 else 0.0
    gamma_g, gamma_c = SOFTWARE_CONTENTION
    software = pipelined_time(g, x, p, final_reduce_s=last_reduce, gemm_slowdown=gamma_g, comm_slowdown=gamma_c)
    software = max(software, base.overlapped / dram)
    g3, x3 = chunk_times(gemm, link.reduce_scatter_time(out_bytes, p), p)
    t3 = max(pipelined_time(g3, x3, p), nmc.overlapped / dram)
    return SublayerResult(
        sublayer=sub,
        gemm_s=gemm,
        reduce_scatter_s=rs,
        all_gather_s=ag,
        sequential_s=gemm + rs + ag,
        software_s=software + ag,
        t3_s=t3 + ag,
        ideal_s=ideal_overlap_time(gemm, rs, p) + ag,
        bytes_baseline=base.total,
        bytes_t3=nmc.total,
    )


def paper_scale_table(tokens: int = 2048, gpu: GPUModel = PAPER_GPU, link: Link = PAPER_RING) -> list[SublayerResult]:
    """Every sublayer of :data:`PAPER_MODELS` at :data:`PAPER_TP_DEGREES`, ``tokens`` rows each."""
    rows = []
    for shape in PAPER_MODELS:
        for tp in PAPER_TP_DEGREES[shape.name]:
            rows.extend(evaluate_sublayer(sub, gpu, link) for sub in sublayers(shape, tp, tokens))
    return rows


def geomean(values) -> float:
    """Geometric mean of positive numbers."""
    values = [float(v) for v in values]
    if not values or min(values) <= 0:
        raise ValueError(f"geomean needs positive numbers, got {values}")
    return math.exp(sum(math.log(v) for v in values) / len(values))
