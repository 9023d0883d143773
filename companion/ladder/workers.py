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
from companion.ladder import shaping
from companion.ladder.communicators import CountingCommunicator, NoCommunication
from companion.ladder.cost_model import latency_for_allreduce_time
from companion.ladder.model import Decoder, KVCache
from companion.ladder.sharding import shard_model
from companion.lm import GPTConfig

#: The variants timed by the speed experiment: standard, Ladder, parallel blocks (GPT-J / PaLM,
#: one all-reduce per layer), and no communication at all (the standard model's compute alone).
VARIANTS = ("standard", "ladder", "parallel", "no-comm")

#: The model forms a worker can build from one set of weights: an int is ``ladder_layers`` (0 the
#: standard model, ``n_layers`` the full Ladder), "parallel" the parallel-block model.
PARALLEL = "parallel"

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

    The all-reduce really runs (gloo) and its completion is held back to the modelled time
    (:class:`companion.comm.ModelledLink`); for a link the kernel really throttles, see
    :class:`~companion.ladder.shaping.ShapedPerCompute`.
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


def check_variants(variants) -> tuple[str, ...]:
    """Validate a tuple of distinct :data:`VARIANTS` names that includes "standard"; return it."""
    variants = tuple(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or "standard" not in variants or len(set(variants)) != len(variants):
        raise ValueError(f"variants must be distinct names from {VARIANTS} including 'standard' "
                         f"(speed-ups are over it), got {variants!r}")
    return variants


def _form(full: Decoder, form: int | str) -> Decoder:
    """``full`` as form ``form``: ``ladder_layers`` (an int) or :data:`PARALLEL`."""
    if form == PARALLEL:
        return full.with_parallel_blocks()
    if isinstance(form, int):
        return full.with_ladder_layers(form)
    raise ValueError(f"a form is an int (ladder_layers) or {PARALLEL!r}, got {form!r}")


def _shard(cfg: GPTConfig, seed: int, state: dict | None, variant: str, rank: int, world_size: int) -> Decoder:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    form = {"ladder": cfg.n_layers, "parallel": PARALLEL}.get(variant, 0)
    return _tp_shard(_form(_full_model(cfg, seed, state), form), rank, world_size)


def tp_logits_worker(
    rank: int, world_size: int, cfg: GPTConfig, forms: list[int | str], tokens: torch.Tensor, seed: int = 0,
    state: dict | None = None,
) -> dict:
    """Logits ``(B, T, vocab)`` of this rank's shard over bare gloo, for each form in ``forms``.

    A form is ``ladder_layers`` (an int) or :data:`PARALLEL`. The model is ``Decoder(cfg)``
    initialised with ``seed``, or loaded from a full ``state``. Every rank returns the full
    logits (the head is replicated), on the CPU.
    """
    return {form: res["logits"] for form, res in
            tp_traffic_worker(rank, world_size, cfg, forms, tokens, seed, state).items()}


def tp_traffic_worker(
    rank: int, world_size: int, cfg: GPTConfig, forms: list[int | str], tokens: torch.Tensor, seed: int = 0,
    state: dict | None = None,
) -> dict:
    """One forward per form over bare gloo, with what it sent: ``{form: {"logits", "all_reduces",
    "payload_bytes", "bytes_sent"}}``.

    ``all_reduces`` and ``payload_bytes`` are counted where the decoder hands tensors to the
    network (:class:`~companion.ladder.communicators.CountingCommunicator`), ``bytes_sent`` by
    the link itself (:attr:`companion.comm.ModelledLink.bytes_sent`, a ring's bytes per rank).
    """
    out = {}
    tokens = tokens.to(comm.device())
    for form in forms:
        shard = _tp_shard(_form(_full_model(cfg, seed, state), form), rank, world_size)
        link = comm.ModelledLink(None)
        counted = CountingCommunicator(link)
        with torch.no_grad():
            logits = shard(tokens, counted).cpu()
        out[form] = {"logits": logits, "all_reduces": counted.n_all_reduces,
                     "payload_bytes": counted.payload_bytes, "bytes_sent": link.bytes_sent}
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
    variants: tuple[str, ...] = VARIANTS,
    network: comm.ShapedLink | None = None,
) -> dict:
    """Time prefill and greedy decode steps of every variant for each ``(setting, batch size)`` in ``cases``.

    ``settings`` maps a name to a :class:`companion.comm.Link`, a :class:`LinkPerCompute`, a
    :class:`~companion.ladder.shaping.ShapedPerCompute` (needs ``network``, the launch's
    :class:`~companion.comm.ShapedLink`), ``None`` (bare gloo) or :data:`FREE_NETWORK`. The variants are *interleaved step by step*
    (standard step, Ladder step, no-communication step, next standard step, ...), each after a
    barrier, so that a busy spell of the shared machine lands on all of them alike and the ratio of
    neighbouring steps measures the architectures rather than the load. ``variants`` picks which
    of :data:`VARIANTS` run (the calibration always times "no-comm", for ``c``).

    Returns ``{"times": [(setting, batch, repeat, {variant: prefill_s}, {variant: [step_s]})],
    "spans": {variant: [Span]}, "module_compute_s": c, "links": {setting: link},
    "shaping": {setting: calibration}}`` (see :func:`companion.ladder.shaping.calibrate`); the spans are
    one decode step at the smallest batch over ``gantt_setting``; ``c`` and the calibrated links
    are measured at the smallest batch.
    """
    variants = check_variants(variants)
    shards = {v: _shard(cfg, seed, None, v, rank, world_size) for v in (*variants, "no-comm")}
    gen = torch.Generator().manual_seed(seed)
    batch_sizes = sorted({b for _, b in cases})
    prompts = {b: torch.randint(0, cfg.vocab_size, (b, prompt_len), generator=gen, device="cpu").to(comm.device())
               for b in batch_sizes}
    timeline = comm.Timeline(rank)
    c = _module_compute_s(shards, prompts[batch_sizes[0]], n_new, timeline)
    nbytes = batch_sizes[0] * cfg.d_model * 4  # one decode step's fp32 activations
    shaped = {name: s for name, s in settings.items() if isinstance(s, shaping.ShapedPerCompute)}
    shaped = shaping.calibrate(shaped, c, nbytes, network) if shaped else {}
    settings = {name: None if name in shaped
                else _calibrated(link, c, nbytes, world_size) if isinstance(link, LinkPerCompute)
                else link for name, link in settings.items()}
    nets = {name: NoCommunication(timeline) if link == FREE_NETWORK else comm.ModelledLink(link, timeline=timeline)
            for name, link in settings.items()}

    def use(name: str) -> None:  # a shaped setting reshapes every rank's NIC, the others restore it
        if shaped:
            shaping.set_link(shaped[name]["link"] if name in shaped else network)

    timed = {v: shards[v] for v in variants}
    for name in settings:  # warm-up: first calls allocate and fill caches
        use(name)
        _interleaved_generation(timed, prompts[batch_sizes[0]], 2, nets[name], timeline)
    times = []
    for rep in range(repeats):
        for name, b in cases:
            use(name)
            prefill, steps = _interleaved_generation(timed, prompts[b], n_new, nets[name], timeline)
            times.append((name, b, rep, prefill, steps))
            timeline.reset()  # keep the timeline small
    spans = {}
    if gantt_setting is not None:
        use(gantt_setting)
        for v in variants:
            spans[v] = _one_decode_step_spans(shards[v], prompts[batch_sizes[0]], nets[gantt_setting], v, timeline)
    shaped = {name: {k: v for k, v in cal.items() if k != "link"} for name, cal in shaped.items()}
    return {"times": times, "spans": spans, "module_compute_s": c, "links": settings, "shaping": shaped}


def _calibrated(link: LinkPerCompute, c: float, nbytes: int, world_size: int) -> comm.Link:
    """The modelled link of ``link`` once ``c`` is measured: a ring over ``world_size`` ranks."""
    bandwidth = link.gbit_per_s * comm.BYTES_PER_S_PER_GBPS
    return comm.Link(latency_for_allreduce_time(link.ratio * c, nbytes, world_size, bandwidth), bandwidth)


@torch.no_grad()
def _interleaved_generation(shards: dict, prompt: torch.Tensor, n_new: int, net, timeline):
    """Prefill, then ``n_new`` greedy steps, of every variant of ``shards`` in turn; seconds per variant."""
    caches = {v: KVCache() for v in shards}
    comms = {v: NoCommunication(timeline) if v == "no-comm" else net for v in shards}
    tokens, prefill, steps = {}, {}, {v: [] for v in shards}
    for v in shards:
        dist.barrier()
        t0 = time.perf_counter()
        tokens[v] = shards[v](prompt, comms[v], cache=caches[v])[:, -1:].argmax(-1)  # (B, 1)
        stream_done(prompt.device)  # a GPU's step ends when its kernels do
        prefill[v] = time.perf_counter() - t0
    for _ in range(n_new):
        for v in shards:
            dist.barrier()
            t0 = time.perf_counter()
            tokens[v] = shards[v](tokens[v], comms[v], cache=caches[v])[:, -1:].argmax(-1)  # (B, 1)
            stream_done(prompt.device)
            steps[v].append(time.perf_counter() - t0)
    return prefill, steps


def _module_compute_s(shards: dict, prompt: torch.Tensor, n_new: int, timeline) -> float:
    """Per-module decode compute: the median no-communication step over the module count, slowest rank.

    Measured the way the experiment measures (every variant's steps interleaved, over a free
    network), in calibration runs of their own before any timed one, so that a link calibrated
    on it means what it says.
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
