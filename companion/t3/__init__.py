"""``companion.t3``: T3's fine-grained overlap of a GEMM with its reduce-scatter (Pati et al., 2024).

- :mod:`~companion.t3.pipeline_model`: closed forms ``T_seq = G + C_RS``, the ring pipeline
  ``g' + (p-1) max(g', x') + r`` and its ``2 - 1/p`` ceiling;
- :mod:`~companion.t3.layout`: which row chunks each schedule computes when, and where they go;
- :mod:`~companion.t3.schedule_model`: an event-driven model of the three schedules;
- :mod:`~companion.t3.tracker` and :mod:`~companion.t3.schedules`: the schedules on real processes,
  with a per-chunk counter that fires each send (track & trigger in software);
- :mod:`~companion.t3.experiment`: every schedule measured through ``comm.launch``, beside the model;
- :mod:`~companion.t3.plots`: speedup curves and modelled timelines;
- :mod:`~companion.t3.dram_traffic`: DRAM bytes of the two baselines (five and three chunk
  accesses per ring step) and of near-memory reduction;
- :mod:`~companion.t3.hardware` and :mod:`~companion.t3.paper_scale`: the paper-scale sublayer table;
- :mod:`~companion.t3.paper`: the paper's numbers, each with its source's status;
- :mod:`~companion.t3.rule_of_thumb`: ``C_RS / G = (p - 1) b F / (2 p K beta)``, independent of
  ``M``, with the vendor figures of an H100 and an H200 NVLink node.
"""

from .dram_traffic import TrafficCount, category_changes, count_dram_traffic, rs_chunk_accesses, with_gemm_reads
from .hardware import HARDWARE_SOURCES, PAPER_GPU, PAPER_RING, GPUModel
from .layout import SCHEDULES, ScheduleLayout, check_rows, item_rows, make_layout
from .paper import PAPER
from .paper_scale import (
    PAPER_MODEL_SETS,
    PAPER_MODELS,
    PAPER_TP_DEGREES,
    contention_for_gap,
    dram_headroom,
    evaluate_sublayer,
    geomean,
    paper_scale_table,
    speedup_summary,
    sublayers,
    traffic_categories,
)
from .pipeline_model import chunk_times, ideal_overlap_time, pipelined_time, sequential_time, speedup_ceiling
from .schedule_model import ScheduleTrace, simulate_ring, simulate_schedule, trace_spans
from .tracker import ChunkTracker

__all__ = [
    "HARDWARE_SOURCES", "PAPER", "PAPER_GPU", "PAPER_MODELS", "PAPER_MODEL_SETS", "PAPER_RING",
    "PAPER_TP_DEGREES", "SCHEDULES", "category_changes", "check_rows", "chunk_times",
    "ChunkTracker", "contention_for_gap", "count_dram_traffic", "dram_headroom",
    "evaluate_sublayer", "geomean", "GPUModel", "ideal_overlap_time", "item_rows", "make_layout",
    "paper_scale_table", "pipelined_time", "rs_chunk_accesses", "ScheduleLayout", "ScheduleTrace",
    "sequential_time", "simulate_ring", "simulate_schedule", "speedup_ceiling", "speedup_summary",
    "sublayers", "trace_spans", "traffic_categories", "TrafficCount",
    "with_gemm_reads",
]
