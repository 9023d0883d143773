"""The authors' measured speed-ups, to print beside ours.

Sources (read in the session's research notes, ``t3-ladder-residual.md`` section 2.4):

- ``tools/plot-70b.py`` of the official inference repository ``mayank31398/ladder-residual-inference``:
  Llama-3.1-70B shapes, tensor parallelism over 8 GPUs, prompt 1024 tokens, 512 generated,
  tokens/s of standard, Ladder and the no-communication upper bound, with NVLink peer-to-peer on
  ("P2P=1") and disabled ("P2P=0", ``NCCL_P2P_DISABLE=1``). Ratios computed from those numbers.
- The upper bound was reported with P2P on only.
- The same file's parallel-block ("parallel-attn", GPT-J / PaLM) model, at the same settings.
- The authors' blog post (Muru Zhang's site, ``blogs/ladder_residual/together_blog.md``) for the
  one statement on the parallel block's quality; its results tables are images.

:data:`STATUS` says how each constant was checked.
"""

from __future__ import annotations

#: batch size -> (Ladder / standard with NVLink, upper bound / standard with NVLink, Ladder / standard without)
SPEEDUP_70B_TP8 = {
    1: (1.308, 1.429, 1.599),
    4: (1.282, 1.376, 1.566),
    16: (1.190, 1.316, 1.351),
    64: (1.155, 1.275, 1.282),
}

#: tokens/s at batch 1, TP 8, NVLink on: standard, Ladder, parallel blocks, no-communication upper bound
TOKENS_PER_S_70B_BS1 = {"standard": 77.39, "ladder": 101.22, "parallel": 94.22, "no-comm": 110.59}

#: Layers of the Llama-3-70B shapes the speed-ups were measured on (the repository's
#: ``transformer_configs["llama-3-70b"]``): 2 modules each, one all-reduce per module.
LAYERS_70B = 80

#: batch size -> (parallel blocks / standard with NVLink, parallel / standard without), same file
PARALLEL_SPEEDUP_70B_TP8 = {
    1: (1.217, 1.401),
    4: (1.189, 1.389),
    16: (1.155, 1.362),
    64: (1.164, 1.288),
}


def paper_rows() -> list[dict]:
    """One dict per batch size: ``batch``, ``ladder_nvlink``, ``bound_nvlink``, ``ladder_no_nvlink``."""
    return [
        {"batch": b, "ladder_nvlink": l, "bound_nvlink": u, "ladder_no_nvlink": n}
        for b, (l, u, n) in SPEEDUP_70B_TP8.items()
    ]


#: Training from scratch, 100B tokens of FineWeb-edu (ICML version's sizes). Wikitext perplexity and
#: average zero-shot accuracy (%) of standard and Ladder models. From two independent secondary
#: summaries of the ICML 2025 PDF (its tables are images); a third summary gives 63.03 for the
#: Ladder-3.5B average. Treat as approximate.
PRETRAINING = {
    "1.2B": {"standard_ppl": 18.54, "ladder_ppl": 18.42, "standard_acc": 59.98, "ladder_acc": 58.92},
    "3.5B": {"standard_ppl": 14.48, "ladder_ppl": 14.90, "standard_acc": 64.11, "ladder_acc": 62.91},
}

#: Llama-3.1-8B-Instruct with its upper 16 of 32 layers converted to Ladder: average benchmark score
#: and GSM8K accuracy (%), before conversion, converted with no retraining, and after retraining on
#: 3B tokens. Same secondary sources as :data:`PRETRAINING`.
CONVERSION_8B = {
    "original": {"avg": 56.11, "gsm8k": 84.99},
    "zero_shot": {"avg": 41.65, "gsm8k": 10.54},
    "retrained": {"avg": 57.61, "gsm8k": 86.81},
}

#: The training and conversion settings, from the authors' blog: pretraining on 100B tokens of
#: FineWeb-edu; the conversion makes layers 16 to 32 of Llama-3.1-8B-Instruct's 32 Ladder layers
#: and retrains on 3B tokens of Infinity-Instruct.
PRETRAIN_TOKENS_B = 100
CONVERSION_LAYERS = (16, 32)  # (first converted layer, layers in the model)
CONVERSION_RETRAIN_TOKENS_B = 3

#: The one statement we have on the parallel block's quality, from the authors' blog (no numbers:
#: the paper's pretraining table is an image, and no summary we read gives its parallel row).
PARALLEL_QUALITY_3B = ("The Parallel Transformer has almost the same performance as Ladder "
                       "Transformer at the 3B scale.")

#: How each constant was checked. "primary": the authors' own repository or writing;
#: "secondary": a summary of the paper by someone else.
STATUS = {
    "SPEEDUP_70B_TP8": "primary (authors' repository, tools/plot-70b.py; ratios computed by us)",
    "TOKENS_PER_S_70B_BS1": "primary (authors' repository, tools/plot-70b.py)",
    "PARALLEL_SPEEDUP_70B_TP8": "primary (authors' repository, tools/plot-70b.py; ratios computed by us)",
    "LAYERS_70B": "primary (authors' repository, gpt_fast/gpt_parallel_TP.py transformer_configs)",
    "PARALLEL_QUALITY_3B": "primary (authors' blog post, not the paper)",
    "PRETRAINING": "secondary (two summaries of the ICML PDF; a third disagrees on one number)",
    "CONVERSION_8B": "secondary (two summaries of the ICML PDF)",
    "PRETRAIN_TOKENS_B": "primary (authors' blog post)",
    "CONVERSION_LAYERS": "primary (authors' blog post)",
    "CONVERSION_RETRAIN_TOKENS_B": "primary (authors' blog post)",
}


def status_of(name: str) -> str:
    """How the constant ``name`` of this module was checked (:data:`STATUS`)."""
    if name not in STATUS:
        raise ValueError(f"no status recorded for {name!r}; known: {sorted(STATUS)}")
    return STATUS[name]
