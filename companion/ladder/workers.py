"""Worker functions for :func:`companion.comm.launch`: one rank of a tensor-parallel decoder.

Every rank builds the same full model from ``seed`` (no weights travel between processes), keeps its
Megatron shard, and runs the forward or the generation over a :class:`companion.comm.ModelledLink`.
Models are built on the CPU (one random stream for every device) and moved, with every input, to
:func:`companion.comm.device`; a GPU step is timed until its kernels are done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from companion import comm
from companion.comm.device_timing import stream_done
from companion.ladder.communicators import NoCommunication
from companion.ladder.cost_model import latency_for_allreduce_time
from companion.ladder.model import Decoder, KVCache
from companion.ladder.sharding import shard_model
from companion.lm import GPTConfig

#: The three variants timed by the speed experiment: standard, Ladder, and no communication at all.
VARIANTS = ("standard", "ladder", "no-comm")

#: A link setting that stands for an infinitely fast network (unlimited bandwidth, zero latency):
#: all-reduces are skipped and take no time, so every variant computes exactly what it would
#: compute with free communication. It isolates what the Ladder changes in the compute itself.
FREE_NETWORK = "free"


@dataclass(frozen=True)
class LinkPerCompute:
    """A link whose all-reduce of one decode step's activations takes ``ratio`` times one module's compute.

    The ranks measure their own per-module decode compute ``c`` at the smallest batch size (median
    no-communication decode step, the slowest rank's value), then model a link of bandwidth
    ``gbit_per_s`` whose latency makes that all-reduce last ``a = ratio * c``. Calibrating in the
    timed processes themselves keeps ``a / c`` what it says on a busy, shared machine.
    """

    ratio: float
    gbit_per_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.ratio > 0 or not self.gbit_per_s > 0:
            raise ValueError(f"ratio and gbit_per_s must be > 0, got {self.ratio}, {self.gbit_per_s}")


def _full_model(cfg: GPTConfig, seed: int, state: dict | None) -> Decoder:
    """The full model on the CPU, initialised from ``seed`` (or loaded from ``state``)."""
    torch.manual_seed(seed)
    with torch.device("cpu"):  # the CPU's random stream: the same weights on every device
        model = Decoder(cfg)
    if state is not None:
        model.load_state_dict(state)
    return model.eval()


def _tp_shard(full: Decoder, rank: int, world_size: int) -> Decoder:
    """Rank ``rank``'s shard of the CPU model ``full``, on :func:`companion.comm.device`."""
    with torch.device("cpu"):
        shard = shard_model(full, tp_rank=rank, tp_size=world_size)
    return shard.to(comm.device())


def _shard(cfg: GPTConfig, seed: int, state: dict | None, variant: str, rank: int, world_size: int) -> Decoder:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    ladder_layers = cfg.n_layers if variant == "ladder" else 0
    full = _full_model(cfg, seed, state).with_ladder_layers(ladder_layers)
    return _tp_shard(full, rank, world_size)


def tp_logits_worker(
    rank: int, world_size: int, cfg: GPTConfig, ladder_layers: list[int], tokens: torch.Tensor, seed: int = 0,
    state: dict | None = None,
) -> dict[int, torch.Tensor]:
    """Logits ``(B, T, vocab)`` of this rank's shard over bare gloo, for each residual form in ``ladder_layers``.

    The model is ``Decoder(cfg)`` initialised with ``seed``, or loaded from a full ``state``.
    Every rank returns the full logits (the head is replicated), on the CPU.
    """
    out = {}
    tokens = tokens.to(comm.device())
    for k in ladder_layers:
        full = _full_model(cfg, seed, state).with_ladder_layers(k)
        shard = _tp_shard(full, rank, world_size)
        with torch.no_grad():
            out[k] = shard(tokens, comm.ModelledLink(None)).cpu()
    return out


def speed_worker(
    rank: int,
    world_size: int,
    cfg: GPTConfig,
    settings: dict,
    cases: list[tuple[str, int]],
    prompt_len: int,
    n_new: int,
    repeats: int,
    gantt_setting: str | None = None,
    seed: int = 0,
) -> dict:
    """Time prefill and greedy decode steps of every variant for each ``(setting, batch size)`` in ``cases``.

    ``settings`` maps a name to a :class:`companion.comm.Link`, a :class:`LinkPerCompute`,
    ``None`` (bare gloo) or :data:`FREE_NETWORK`. The variants are *interleaved step by step*
    (standard step, Ladder step, no-communication step, next standard step, ...), each after a
    barrier, so that a busy spell of the shared machine lands on all three alike and the ratio of
    neighbouring steps measures the architectures rather than the load.

    Returns ``{"times": [(setting, batch, repeat, {variant: prefill_s}, {variant: [step_s]})],
    "spans": {variant: [Span]}, "module_compute_s": c, "links": {setting: link}}``; the spans are
    one decode step at the smallest batch over ``gantt_setting``; ``c`` and the calibrated links
    are measured at the smallest batch.
    """
    shards = {v: _shard(cfg, seed, None, v, rank, world_size) for v in VARIANTS}
    gen = torch.Generator().manual_seed(seed)
    batch_sizes = sorted({b for _, b in cases})
    prompts = {b: torch.randint(0, cfg.vocab_size, (b, prompt_len), generator=gen, device="cpu").to(comm.device())
               for b in batch_sizes}
    timeline = comm.Timeline(rank)
    c = _module_compute_s(shards, prompts[batch_sizes[0]], n_new, timeline)
    nbytes = batch_sizes[0] * cfg.d_model * 4  # one decode step's fp32 activations
    settings = {
        name: comm.Link(latency_for_allreduce_time(link.ratio * c, nbytes, world_size,
                                                   link.gbit_per_s * comm.BYTES_PER_S_PER_GBPS),
                        link.gbit_per_s * comm.BYTES_PER_S_PER_GBPS)
        if isinstance(link, LinkPerCompute) else link
        for name, link in settings.items()
    }
    nets = {
        name: NoCommunication(timeline) if link == FREE_NETWORK else comm.ModelledLink(link, timeline=timeline)
        for name, link in settings.items()
    }
    for name in settings:  # warm-up: first calls allocate and fill caches
        _interleaved_generation(shards, prompts[batch_sizes[0]], 2, nets[name], timeline)
    times = []
    for rep in range(repeats):
        for name, b in cases:
            prefill, steps = _interleaved_generation(shards, prompts[b], n_new, nets[name], timeline)
            times.append((name, b, rep, prefill, steps))
            timeline.reset()  # keep the timeline small
    spans = {}
    if gantt_setting is not None:
        for v in VARIANTS:
            spans[v] = _one_decode_step_spans(shards[v], prompts[batch_sizes[0]], nets[gantt_setting], v, timeline)
    return {"times": times, "spans": spans, "module_compute_s": c, "links": settings}


@torch.no_grad()
def _interleaved_generation(shards: dict, prompt: torch.Tensor, n_new: int, net, timeline):
    """Prefill, then ``n_new`` greedy steps, of every variant in turn; seconds per variant."""
    caches = {v: KVCache() for v in VARIANTS}
    comms = {v: NoCommunication(timeline) if v == "no-comm" else net for v in VARIANTS}
    tokens, prefill, steps = {}, {}, {v: [] for v in VARIANTS}
    for v in VARIANTS:
        dist.barrier()
        t0 = time.perf_counter()
        tokens[v] = shards[v](prompt, comms[v], cache=caches[v])[:, -1:].argmax(-1)  # (B, 1)
        stream_done(prompt.device)  # a GPU's step ends when its kernels do
        prefill[v] = time.perf_counter() - t0
    for _ in range(n_new):
        for v in VARIANTS:
            dist.barrier()
            t0 = time.perf_counter()
            tokens[v] = shards[v](tokens[v], comms[v], cache=caches[v])[:, -1:].argmax(-1)  # (B, 1)
            stream_done(prompt.device)
            steps[v].append(time.perf_counter() - t0)
    return prefill, steps


def _module_compute_s(shards: dict, prompt: torch.Tensor, n_new: int, timeline) -> float:
    """Per-module decode compute: the median no-communication step over the module count, slowest rank.

    Measured the way the experiment measures (interleaved steps over a free network), so that a
    link calibrated on it means what it says.
    """
    _interleaved_generation(shards, prompt, 2, NoCommunication(), timeline)  # warm-up
    _, steps = _interleaved_generation(shards, prompt, n_new, NoCommunication(), timeline)
    per_module = torch.tensor([float(np.median(steps["no-comm"])) / shards["no-comm"].n_modules],
                              dtype=torch.float64, device=comm.device())
    dist.all_reduce(per_module, op=dist.ReduceOp.MAX)
    timeline.reset()
    return float(per_module)


def _one_decode_step_spans(shard, prompt, net, variant, timeline) -> list:
    comm_ = NoCommunication(timeline) if variant == "no-comm" else net
    cache = KVCache()
    with torch.no_grad():
        token = shard(prompt, comm_, cache=cache)[:, -1:].argmax(-1)  # (B, 1)
        shard(token, comm_, cache=cache)  # first decode step: caches warm
        dist.barrier()
        timeline.reset()
        shard(token.clone(), comm_, cache=cache)
        stream_done(token.device)
    spans = timeline.spans
    timeline.reset()
    return spans


def torchrun_job(d_model: int = 64, n_layers: int = 4, batch: int = 2, prompt_len: int = 8, seed: int = 0):
    """Tensor-parallel logits for :mod:`companion.comm.torchrun`: ``(tp_logits_worker, args)``.

    The standard decoder and the all-Ladder one, sharded over the ranks; the logits depend only
    on the seed, so a torchrun run and a :func:`companion.comm.launch` run must agree exactly.
    """
    cfg = GPTConfig(vocab_size=32, seq_len=32, d_model=d_model, n_layers=n_layers, n_heads=4)
    tokens = torch.randint(0, cfg.vocab_size, (batch, prompt_len), generator=torch.Generator().manual_seed(seed))
    return tp_logits_worker, (cfg, [0, n_layers], tokens, seed)
