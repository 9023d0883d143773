"""Greedy decoding with a KV cache, timed separately for prefill and decode."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from companion.comm.device_timing import stream_done
from companion.ladder.communicators import Communicator
from companion.ladder.model import Decoder, KVCache


@dataclass(frozen=True)
class GenerationTiming:
    """Wall-clock seconds of one generation on one rank, and the tokens it produced."""

    batch_size: int
    prompt_len: int  # tokens per sequence processed by the prefill
    n_new: int  # tokens per sequence produced by the decode loop
    prefill_s: float
    decode_s: float
    step_s: tuple = ()  # seconds of each decode step, in order (they sum to decode_s)

    @property
    def prefill_tokens_per_s(self) -> float:
        """Prompt tokens processed per second, summed over the batch."""
        return self.batch_size * self.prompt_len / self.prefill_s

    @property
    def decode_tokens_per_s(self) -> float:
        """Generated tokens per second, summed over the batch (the paper's throughput)."""
        return self.batch_size * self.n_new / self.decode_s


@torch.no_grad()
def greedy_generate(
    model: Decoder, prompt: torch.Tensor, n_new: int, comm: Communicator | None = None
) -> tuple[torch.Tensor, GenerationTiming]:
    """Prefill ``prompt (B, T)``, then decode ``n_new`` tokens greedily, one per step.

    Returns the tokens ``(B, T + 1 + n_new)`` (the prefill yields the first new token, each decode
    step one more) and the timing. Every rank of a tensor-parallel run calls this in lockstep.
    """
    if n_new < 1:
        raise ValueError(f"n_new must be >= 1, got {n_new}")
    if prompt.ndim != 2:
        raise ValueError(f"prompt must have shape (B, T), got {tuple(prompt.shape)}")
    B, T = prompt.shape
    if T + n_new > model.cfg.seq_len:
        raise ValueError(
            f"prompt {T} + n_new {n_new} tokens exceed seq_len={model.cfg.seq_len}; shorten one"
        )
    cache = KVCache()
    t0 = time.perf_counter()
    logits = model(prompt, comm, cache=cache)  # (B, T, V)
    token = logits[:, -1].argmax(-1, keepdim=True)  # (B, 1)
    stream_done(token.device)  # a GPU's step ends when its kernels do
    t1 = time.perf_counter()
    out = [prompt, token]
    ends = [t1]
    for _ in range(n_new):
        token = model(token, comm, cache=cache)[:, -1].argmax(-1, keepdim=True)  # (B, 1)
        out.append(token)
        stream_done(token.device)
        ends.append(time.perf_counter())
    steps = tuple(b - a for a, b in zip(ends, ends[1:]))
    return torch.cat(out, dim=1), GenerationTiming(B, T, n_new, t1 - t0, ends[-1] - t1, steps)
