"""Loss and held-out evaluation of a next-token model on a :class:`~companion.lm.MarkovSource`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from companion.lm.source import MarkovSource

#: Salt mixed into the evaluation seed so held-out sequences never share a stream with
#: :func:`companion.lm.token_batches` for the same integer seed.
EVAL_SALT = 0x5EED_E7A1


def lm_loss(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in nats, predicting ``tokens[:, 1:]`` from the prefixes.

    ``tokens`` is a LongTensor ``(B, L)`` with ``L >= 2``; the model sees ``tokens[:, :-1]``.
    """
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must have shape (B, L) with L >= 2, got {tuple(tokens.shape)}")
    logits = model(tokens[:, :-1])  # (B, L-1, V)
    targets = tokens[:, 1:]  # (B, L-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


@torch.no_grad()
def evaluate(model: nn.Module, src: MarkovSource, n_seqs: int, seq_len: int, seed: int, batch_size: int = 64) -> float:
    """Mean :func:`lm_loss` (nats) over ``n_seqs`` fresh sequences drawn from ``src`` with ``seed``.

    The sequences come from a stream salted apart from every training stream, and are the same
    for the same ``(src, n_seqs, seq_len, seed)``, so two models are compared on identical data.
    The sequences are drawn on the host and moved to the model's device. The model's
    train/eval mode is restored afterwards.
    """
    if n_seqs < 1:
        raise ValueError(f"n_seqs must be >= 1, got {n_seqs}")
    rng = np.random.default_rng([int(seed), EVAL_SALT])
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tokens = src.sample(n_seqs, seq_len, rng).to(device)  # (n_seqs, seq_len), independent of batch_size
    total = 0.0
    try:
        for chunk in tokens.split(batch_size):
            total += float(lm_loss(model, chunk)) * chunk.shape[0]
    finally:
        model.train(was_training)
    return total / n_seqs
