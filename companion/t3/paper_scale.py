"""The paper-scale table: T3's communication-heavy sublayers on the simulated GPU and ring.

Each sublayer is a row-parallel GEMM whose ``(M, d_model)`` output is all-reduced (ring
reduce-scatter, then ring all-gather); T3 fuses the GEMM with the reduce-scatter, the
all-gather stays as it was.  The four sublayers per model (T3 §5.2, secondary):

- forward: attention output projection (OP, ``K = d/p``) and FC-2 (``K = d_ff/p``);
- backward: the input-gradient GEMMs of FC-1 (``K = d_ff/p``, twice that for a gated FFN) and
  of the attention input projection (IP, ``K = 3d/p``), the mirror images of FC-2 and OP.

The paper's model sets and tensor-parallel degrees (T3 §5.2, as a secondary reading reports
them): Mega-GPT-2 and T-NLG at TP 8 and 16; GPT-3, PaLM and MT-NLG at TP 32.  The paper's
own layer shapes are not in our notes, so the shapes are our choice, each from the model's
own paper or announcement (:data:`PAPER_MODELS` says which):

- Mega-GPT-2: Megatron-LM's 8.3B GPT-2 (Shoeybi et al. 2019: 72 layers, d = 3072, 32 heads);
- T-NLG (Microsoft, 2020: 78 layers, d = 4256, 28 heads);
- GPT-3 175B (Brown et al. 2020, Table 2.1: 96 layers, d = 12288, 96 heads);
- MT-NLG (Smith et al. 2022: 105 layers, d = 20480, 128 heads);
- PaLM-540B (Chowdhery et al. 2022: 118 layers, d = 18432, 48 heads, d_ff = 4d with SwiGLU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from companion.comm import Link

from .dram_traffic import TrafficCount, category_changes, count_dram_traffic, with_gemm_reads
from .hardware import PAPER_GPU, PAPER_RING, GPUModel
from .paper import OUR_CHOICE, PAPER, SECONDARY
from .pipeline_model import chunk_times, ideal_overlap_time, pipelined_time

__all__ = [
    "TransformerShape",
    "PAPER_MODELS",
    "PAPER_TP_DEGREES",
    "PAPER_MODEL_SETS",
    "MODEL_SET_STATUS",
    "TOKENS",
    "SOFTWARE_CONTENTION",
    "SOFTWARE_COMM_CUS",
    "PAPER_REPORTED",
    "Sublayer",
    "SublayerResult",
    "paper_model",
    "sublayers",
    "evaluate_sublayer",
    "paper_scale_table",
    "speedup_summary",
    "dram_headroom",
    "contention_for_gap",
    "traffic_categories",
    "geomean",
]


@dataclass(frozen=True)
class TransformerShape:
    """The widths that size a transformer layer's GEMMs, and where they come from.

    ``layers`` and ``heads`` do not enter the sublayer model (one layer's GEMMs depend on
    ``d_model`` and ``d_ff`` only); they identify the configuration.
    """

    name: str
    d_model: int
    d_ff: int
    gated_ffn: bool = False  # SwiGLU's FC-1 has two d_model x d_ff matrices
    layers: int = 0
    heads: int = 0
    source: str = ""  # a references.bib key, or a short description
    status: str = OUR_CHOICE  # of the shape as the paper used it: ours, taken from `source`


#: The five models of T3 §5.2.  Order kept for callers that index it: T-NLG, MT-NLG, PaLM,
#: then the two added with the paper's full model sets.
PAPER_MODELS = (
    TransformerShape("T-NLG", d_model=4256, d_ff=4 * 4256, layers=78, heads=28, source="rosset2020turing"),
    TransformerShape(
        "MT-NLG", d_model=20480, d_ff=4 * 20480, layers=105, heads=128, source="smith2022megatronturing"
    ),
    TransformerShape(
        "PaLM", d_model=18432, d_ff=4 * 18432, gated_ffn=True, layers=118, heads=48, source="chowdhery2022palm"
    ),
    TransformerShape("Mega-GPT-2", d_model=3072, d_ff=4 * 3072, layers=72, heads=32, source="shoeybi2019megatron"),
    TransformerShape("GPT-3", d_model=12288, d_ff=4 * 12288, layers=96, heads=96, source="brown2020language"),
)

#: T3 §5.2 (secondary): Mega-GPT-2 and T-NLG at TP 8 and 16; the larger models at TP 32.
PAPER_TP_DEGREES = {"Mega-GPT-2": (8, 16), "T-NLG": (8, 16), "GPT-3": (32,), "MT-NLG": (32,), "PaLM": (32,)}

#: The two model sets whose geomeans the paper reports (T3 §6.1 and §6.4).
PAPER_MODEL_SETS = {
    "main": ("Mega-GPT-2", "T-NLG"),
    "large": ("GPT-3", "PaLM", "MT-NLG"),
}

#: Status of the sets and degrees above: a secondary reading of T3 §5.2 (the abstract names
#: T-NLG for the 30 % and PaLM and MT-NLG for the 29 %, nothing more).
MODEL_SET_STATUS = SECONDARY

#: Tokens (GEMM rows M) per sublayer: our choice; the paper's batch and sequence length are
#: not in our notes, and the speedups barely depend on it (``C_RS / G`` does not).
TOKENS = 2048

#: What T3 reports, as fractions, under the keys the chapter's first notebooks use; the
#: values and their status live in :data:`companion.t3.paper.PAPER`.
PAPER_REPORTED = {
    "t3_speedup_geomean": PAPER["t3_mca_geomean"].value,  # T3 with memory-controller arbitration
    "t3_speedup_max": PAPER["t3_mca_max"].value,
    "t3_plain_speedup_geomean": PAPER["t3_geomean"].value,  # T3 without arbitration
    "ideal_speedup_geomean": PAPER["ideal_geomean"].value,  # ideal GEMM / reduce-scatter overlap
    "ideal_speedup_max": PAPER["ideal_max"].value,
    "large_models_speedup_geomean": PAPER["large_t3_mca_geomean"].value,
    "data_movement_geomean": PAPER["data_movement_geomean"].value,
    "data_movement_max": PAPER["data_movement_max"].value,
}

#: CUs given to the collective in T3 Fig. 6 (secondary), out of the simulated GPU's 80.
SOFTWARE_COMM_CUS = int(PAPER["fig6_comm_cus"].value)

#: (gamma_g, gamma_c) of a software fine-grained overlap whose reduce-scatter runs on 16 of the
#: GPU's 80 CUs: T3 Fig. 6 (secondary) reports the GEMM on the remaining 64 CUs ~21 % slower
#: and the collective ~7 % slower.
SOFTWARE_CONTENTION = (PAPER["fig6_gemm_slowdown"].value, PAPER["fig6_comm_slowdown"].value)


def paper_model(name: str) -> TransformerShape:
    """The entry of :data:`PAPER_MODELS` called ``name``."""
    for shape in PAPER_MODELS:
        if shape.name == name:
            return shape
    raise KeyError(f"no model {name!r}; the paper's are {[m.name for m in PAPER_MODELS]}")


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
    """Modelled times (seconds) and DRAM bytes of one sublayer; speedups against sequential.

    ``traffic_kernel`` and ``traffic_fused`` are the two baselines' DRAM counts (five and
    three chunk accesses per ring step), ``traffic_t3`` T3's (:mod:`~companion.t3.dram_traffic`).
    """

    sublayer: Sublayer
    gemm_s: float
    reduce_scatter_s: float
    all_gather_s: float
    sequential_s: float
    software_s: float
    t3_s: float
    ideal_s: float
    traffic_kernel: TrafficCount
    traffic_fused: TrafficCount
    traffic_t3: TrafficCount

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
    def bytes_baseline(self) -> float:
        """DRAM bytes of the five-access baseline."""
        return self.traffic_kernel.total

    @property
    def bytes_fused(self) -> float:
        """DRAM bytes of the fused (three-access) baseline."""
        return self.traffic_fused.total

    @property
    def bytes_t3(self) -> float:
        return self.traffic_t3.total

    @property
    def traffic_reduction(self) -> float:
        """Fraction of DRAM bytes T3 saves over the five-access baseline."""
        return 1.0 - self.bytes_t3 / self.bytes_baseline

    @property
    def traffic_reduction_fused(self) -> float:
        """Fraction of DRAM bytes T3 saves over the fused baseline."""
        return 1.0 - self.bytes_t3 / self.bytes_fused


def evaluate_sublayer(
    sub: Sublayer, gpu: GPUModel = PAPER_GPU, link: Link = PAPER_RING, *, t3_contention: float = 0.0
) -> SublayerResult:
    """Model one sublayer four ways: sequential, software fine-grained, T3, ideal overlap.

    1. ``G`` from the GPU roofline, ``C_RS`` and ``C_AG`` from the ring's alpha-beta model;
       the all-gather is never overlapped.
    2. Sequential: ``G + C_RS + C_AG``, the reduce-scatter at the larger of its link time and
       its DRAM time with kernel reductions.
    3. Software fine-grained: the ring pipeline with the CU-sharing slowdowns of
       :data:`SOFTWARE_CONTENTION` and the last reduction left exposed.
    4. T3: the ring pipeline with reductions near memory (no exposed reduction, no CU
       sharing), bounded below by the DRAM time of the GEMM and reduce-scatter bytes together.
       ``t3_contention`` is the book's contention ``c`` (:func:`pipelined_time`) on T3's
       pipeline: each GEMM chunk stretched by ``c`` times its overlap with the send in
       flight.  0 by default: the model has no memory contention of its own
       (:func:`contention_for_gap` asks how much would be needed).
    """
    e, p, dram = gpu.bytes_per_element, sub.tp, gpu.dram_bytes_per_s
    out_bytes = e * sub.m * sub.n
    gemm = gpu.gemm_time(sub.m, sub.k, sub.n)
    base = count_dram_traffic(sub.m, sub.k, sub.n, p, bytes_per_element=e)
    fused = count_dram_traffic(sub.m, sub.k, sub.n, p, bytes_per_element=e, fused_forward=True)
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
    t3 = max(pipelined_time(g3, x3, p, contention=t3_contention), nmc.overlapped / dram)
    return SublayerResult(
        sublayer=sub,
        gemm_s=gemm,
        reduce_scatter_s=rs,
        all_gather_s=ag,
        sequential_s=gemm + rs + ag,
        software_s=software + ag,
        t3_s=t3 + ag,
        ideal_s=ideal_overlap_time(gemm, rs, p) + ag,
        traffic_kernel=base,
        traffic_fused=fused,
        traffic_t3=nmc,
    )


def paper_scale_table(
    tokens: int = TOKENS,
    gpu: GPUModel = PAPER_GPU,
    link: Link = PAPER_RING,
    *,
    models: tuple[str, ...] | None = None,
    t3_contention: float = 0.0,
) -> list[SublayerResult]:
    """Every sublayer of :data:`PAPER_MODELS` (or of the named ``models``) at :data:`PAPER_TP_DEGREES`.

    ``tokens`` rows each; ``t3_contention`` as in :func:`evaluate_sublayer`.  Rows come in the
    order of ``models`` (default: :data:`PAPER_MODEL_SETS`, main set first).
    """
    if models is None:
        models = tuple(name for names in PAPER_MODEL_SETS.values() for name in names)
    rows = []
    for name in models:
        shape = paper_model(name)
        for tp in PAPER_TP_DEGREES[name]:
            rows.extend(
                evaluate_sublayer(sub, gpu, link, t3_contention=t3_contention) for sub in sublayers(shape, tp, tokens)
            )
    return rows


def speedup_summary(rows: list[SublayerResult]) -> dict[str, float]:
    """Geomean and max of each schedule's speedup over ``rows``, as fractions (0.31 = 31 %).

    Keys ``{ideal,t3,software}_{geomean,max}``, the paper's way of reporting (speedup - 1).
    """
    out = {}
    for kind in ("ideal", "t3", "software"):
        values = [getattr(r, f"{kind}_speedup") for r in rows]
        out[f"{kind}_geomean"] = geomean(values) - 1.0
        out[f"{kind}_max"] = max(values) - 1.0
    return out


def dram_headroom(result: SublayerResult, gpu: GPUModel = PAPER_GPU) -> float:
    """How far T3's overlapped phase is from its DRAM bound: its seconds / its DRAM seconds.

    T3's overlapped phase is the GEMM with its reduce-scatter (``t3_s`` less the all-gather);
    the DRAM seconds are the GEMM's and the near-memory reduce-scatter's compulsory bytes at
    the GPU's bandwidth.  Above 1 the bound does not bind: the GEMM is compute-bound, and the
    GEMM's DRAM traffic would have to grow by about this factor before memory could slow T3.
    """
    t3_overlapped_s = result.t3_s - result.all_gather_s
    return t3_overlapped_s / (result.traffic_t3.overlapped / gpu.dram_bytes_per_s)


def contention_for_gap(
    target_ratio: float,
    models: tuple[str, ...],
    tokens: int = TOKENS,
    gpu: GPUModel = PAPER_GPU,
    link: Link = PAPER_RING,
    *,
    tol: float = 1e-6,
) -> float:
    """The contention ``c`` on T3's pipeline that puts its geomean speedup at ``target_ratio`` of ideal.

    Solves ``geomean(T3 speedup at c) / geomean(ideal speedup) = target_ratio`` over the
    sublayers of ``models`` by bisection (the left side falls as ``c`` grows).  With the
    paper's T3 over its ideal (1.20 / 1.35) as the target this is the memory contention the
    model would need to open the paper's gap, a diagnostic and not a fit used anywhere.

    Parameters
    ----------
    target_ratio : float
        In (0, 1]: 1 needs no contention.
    models : tuple of str
        Names in :data:`PAPER_MODELS`.

    Returns
    -------
    float
        ``c >= 0``, dimensionless (seconds of stretch per second of overlap).
    """
    if not 0 < target_ratio <= 1:
        raise ValueError(f"target_ratio must be in (0, 1], got {target_ratio}")

    def ratio(c: float) -> float:
        rows = paper_scale_table(tokens, gpu, link, models=models, t3_contention=c)
        return geomean(r.t3_speedup for r in rows) / geomean(r.ideal_speedup for r in rows)

    lo, hi = 0.0, 1.0
    if ratio(lo) <= target_ratio:
        return 0.0
    while ratio(hi) > target_ratio:
        hi *= 2.0
        if hi > 1e3:
            raise ValueError(f"no contention up to {hi} reaches ratio {target_ratio}")
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(mid) > target_ratio else (lo, mid)
    return 0.5 * (lo + hi)


def traffic_categories(
    rows: list[SublayerResult], baseline: str = "kernel", *, baseline_gemm_read_factor: float = 1.0
) -> dict[str, float]:
    """Geomean over ``rows`` of T3's per-category traffic changes against one baseline.

    ``baseline`` is ``"kernel"`` (five accesses per ring step) or ``"fused"`` (three).
    ``baseline_gemm_read_factor`` scales the baseline's GEMM reads (1: compulsory, as T3's;
    :func:`~companion.t3.dram_traffic.with_gemm_reads`).  Keys
    as :func:`~companion.t3.dram_traffic.category_changes`, plus ``saving_max`` (the largest
    per-row saving); ratios are geomeans, the saving is ``1 - geomean(1 - saving)`` and the
    changes ``geomean(1 + change) - 1``.
    """
    if baseline not in ("kernel", "fused"):
        raise ValueError(f"baseline must be 'kernel' or 'fused', got {baseline!r}")
    per_row = [
        category_changes(with_gemm_reads(getattr(r, f"traffic_{baseline}"), baseline_gemm_read_factor), r.traffic_t3)
        for r in rows
    ]
    out = {"saving_max": max(c["saving"] for c in per_row)}
    for key in per_row[0]:
        values = [c[key] for c in per_row]
        if key.endswith("ratio"):
            out[key] = geomean(values)
        elif key == "saving":
            out[key] = 1.0 - geomean(1.0 - v for v in values)
        else:
            out[key] = geomean(1.0 + v for v in values) - 1.0
    return out


def geomean(values) -> float:
    """Geometric mean of positive numbers."""
    values = [float(v) for v in values]
    if not values or min(values) <= 0:
        raise ValueError(f"geomean needs positive numbers, got {values}")
    return math.exp(sum(math.log(v) for v in values) / len(values))
