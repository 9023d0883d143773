"""The chapter's experiments, at laptop scale by default and paper-like scale with ``COMPANION_SCALE=paper``.

Notebooks call these so that one switch resizes everything (``companion.scale.pick``). The paper
scale is a model 4x wider and 3x deeper than the default (3 layers per fragment, as in the paper),
H = 100 as in Streaming DiLoCo's main runs, and 25x more steps; it is meant for a machine with more
cores (or a GPU) than the book's build.
"""

from __future__ import annotations

from companion.diloco.paper import STREAMING_OUTER_LR
from companion.diloco.spec import RunSpec
from companion.scale import pick


def base_spec() -> RunSpec:
    """The toy task and model shared by every run of the chapter."""
    return RunSpec(
        steps=pick(default=120, paper=4000),
        H=pick(default=40, paper=100),
        batch_size=pick(default=16, paper=32),
        seq_len=pick(default=32, paper=64),
        d_model=pick(default=32, paper=128),
        n_layers=pick(default=4, paper=12),
        n_heads=4,
        inner_lr=pick(default=3e-3, paper=1e-3),
        eval_every=pick(default=20, paper=200),
        eval_seqs=pick(default=64, paper=512),
    )


def dp_vs_diloco_specs() -> list[RunSpec]:
    """Notebook 1: data-parallel, then DiLoCo at a small, the default and a large ``H``."""
    base = base_spec()
    hs = pick(default=(10, 40, 120), paper=(25, 100, 500))
    return [base.with_(method="data_parallel")] + [base.with_(H=h) for h in hs]


def streaming_specs() -> list[RunSpec]:
    """Notebook 2: DiLoCo, Streaming (P fragments), + overlap (tau = 1, alpha = 0.5), + 4-bit payloads.

    DiLoCo keeps its outer learning rate 0.7; every Streaming variant uses the Streaming paper's
    0.4 (:data:`companion.diloco.paper.STREAMING_OUTER_LR`).
    """
    base = base_spec()
    P = pick(default=4, paper=4)  # 1 layer per fragment by default, 3 at paper scale
    streaming = base.with_(n_fragments=P, outer_lr=STREAMING_OUTER_LR)
    overlap = streaming.with_(tau=1, alpha=0.5)
    return [base, streaming, overlap, overlap.with_(bits=4)]


#: The outer learning rates of the sensitivity sweep (:mod:`companion.diloco.outer_lr_sweep`).
OUTER_LRS = (0.2, 0.4, 0.7, 1.0)


def outer_lr_sweep_specs(outer_lrs=OUTER_LRS) -> list[RunSpec]:
    """DiLoCo and Streaming DiLoCo (P fragments, no overlap) at every outer learning rate."""
    base = base_spec()
    streaming = streaming_specs()[1]
    return ([base.with_(outer_lr=lr) for lr in outer_lrs]
            + [streaming.with_(outer_lr=lr) for lr in outer_lrs])
