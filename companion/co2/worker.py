"""One worker loop for data-parallel, synchronous local SGD and CO2, and its launched wrapper.

:func:`train_loop` is the loop (communicator injected, so it runs on one process in the
tests); :func:`run_specs` is the function ``companion.comm.launch`` starts on every rank. It
trains one fresh model per :class:`RunSpec`, all in the same process group, so a whole sweep
pays the start-up of the processes once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parameters_to_vector

from companion import comm, lm
from companion.lm import ddp

from .schedule import Schedule
from .sync import OuterSync


@dataclass(frozen=True)
class TaskConfig:
    """The toy language-modelling task and the inner optimiser, identical for every run."""

    vocab_size: int = 32  # the default MarkovSource of companion.lm
    order: int = 2  # next token depends on two previous ones
    concentration: float = 0.3  # peaked rows: a floor well below log(32)
    source_seed: int = 0  # the language itself
    seq_len: int = 32  # short sequences keep a step at a few ms on one thread
    batch_size: int = 8  # sequences per worker per step
    d_model: int = 32  # small model: the experiments are about schedules, not capacity
    n_layers: int = 2
    n_heads: int = 4
    inner_lr: float = 3e-3  # AdamW, as the paper's language-model runs use
    seed: int = 0  # model init and data streams
    eval_seqs: int = 256  # held-out sequences for the final loss

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_seqs", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"TaskConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not self.inner_lr > 0:
            raise ValueError(f"TaskConfig.inner_lr must be > 0, got {self.inner_lr}")

    def source(self) -> lm.MarkovSource:
        return lm.MarkovSource(vocab_size=self.vocab_size, order=self.order,
                               concentration=self.concentration, seed=self.source_seed)

    def model(self) -> lm.GPT:
        """The seeded initial model, built on the CPU (move it to ``comm.device()`` afterwards)."""
        torch.manual_seed(self.seed)  # identical init on every rank (and broadcast anyway)
        with torch.device("cpu"):  # the CPU generator, whatever the default device
            return lm.GPT(lm.GPTConfig(vocab_size=self.vocab_size, seq_len=self.seq_len,
                                       d_model=self.d_model, n_layers=self.n_layers,
                                       n_heads=self.n_heads))

    def optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=self.inner_lr, betas=(0.9, 0.95),
                                 weight_decay=0.0)


@dataclass(frozen=True)
class RunSpec:
    """One training run: the schedule, how many inner steps, over which modelled link."""

    schedule: Schedule
    n_steps: int
    link: comm.Link | None = None  # None: bare gloo on loopback, no modelled delay
    name: str = ""
    evaluate: bool = True  # held-out loss of the final model (skip in throughput sweeps)
    bucket_cap_mb: float = ddp.BUCKET_CAP_MB  # data-parallel: DDP's bucket size (several buckets)
    track_progress: bool = False  # local SGD / CO2: record consecutive pseudo-gradients' products

    def __post_init__(self) -> None:
        ddp.check_bucket_cap_mb(self.bucket_cap_mb)
        if not isinstance(self.n_steps, int) or self.n_steps < 1:
            raise ValueError(f"n_steps must be an integer >= 1, got {self.n_steps!r}")
        if self.track_progress and self.schedule.method == "data_parallel":
            raise ValueError("track_progress records pseudo-gradients; data-parallel has none "
                             "(use a local_sgd or co2 schedule, or track_progress=False)")
        if self.n_steps % self.schedule.local_steps:
            raise ValueError(f"n_steps={self.n_steps} is not a multiple of local_steps (τ) = "
                             f"{self.schedule.local_steps}; runs compare at whole rounds")


@dataclass
class RunResult:
    """What one rank reports for one run (times in seconds, losses in nats)."""

    name: str
    rank: int
    losses: list  # training loss of this rank's live model, one per inner step
    step_end_s: list  # seconds from the start of the loop to the end of each inner step
    eval_loss: float  # held-out loss of the final model (NaN on ranks other than 0)
    train_s: float  # wall time of the step loop (barrier to last step)
    drain_s: float  # wall time of the final drain (CO2's last reduction in flight)
    tokens: int  # tokens this rank trained on
    bytes_sent: int  # bytes this rank put on the modelled link
    param_norm: float  # L2 norm of the final parameters: equal on every rank if in sync
    spans: list = field(default_factory=list)  # comm.Span list of this rank
    buckets: list = field(default_factory=list)  # data-parallel: companion.lm.ddp.BucketRecord
    delta_products: list = field(default_factory=list)  # OuterSync.delta_products if tracked


def train_loop(model, optimizer, batches, net, *, schedule: Schedule, n_steps: int,
               world_size: int, ddp_hook: ddp.TimedAllReduce | None = None,
               track_progress: bool = False):
    """Train ``n_steps`` inner steps; returns ``(losses, step_end_s, outer)``.

    ``step_end_s[i]`` is when step ``i`` (including any synchronisation after it) ended, in
    ``time.perf_counter`` seconds; ``outer`` is None for data-parallel.

    The three methods differ in two lines: data-parallel trains a DDP model (``model`` from
    :func:`companion.lm.ddp.wrap`, with its ``ddp_hook``), whose backward averages the gradients;
    the others call :meth:`OuterSync.end_round` after every τ-th step. Call
    ``outer.finish(model)`` afterwards to apply CO2's last reduction. A data-parallel "world"
    of one worker may pass a plain model (there is nothing to average).
    """
    if n_steps % schedule.local_steps:
        raise ValueError(f"n_steps={n_steps} is not a multiple of τ={schedule.local_steps}")
    is_dp = schedule.method == "data_parallel"
    if is_dp and world_size > 1 and not (isinstance(model, DistributedDataParallel) and ddp_hook is not None):
        raise ValueError(f"data-parallel over world_size={world_size} workers needs the model wrapped "
                         "in DDP: pass model, ddp_hook = companion.lm.ddp.wrap(model, net)")
    outer = None if is_dp else OuterSync(model, net, world_size, schedule,
                                         track_progress=track_progress)
    losses, step_end_s = [], []
    for step in range(n_steps):
        tokens = next(batches)  # (B, L) LongTensor of this rank's stream
        if ddp_hook is not None:
            optimizer.zero_grad(set_to_none=True)
            loss = ddp.forward_backward(model, ddp_hook, net.timeline, tokens, step + 1)
        else:
            with net.compute("forward-backward"):
                optimizer.zero_grad(set_to_none=True)
                loss = lm.lm_loss(model, tokens)
                loss.backward()
        with net.compute("inner step"):
            optimizer.step()
            losses.append(loss.item())
        if outer is not None and (step + 1) % schedule.local_steps == 0:
            outer.end_round(model)
        step_end_s.append(time.perf_counter())
    return losses, step_end_s, outer


def run_specs(rank: int, world_size: int, task: TaskConfig, specs: list) -> list:
    """Worker body for ``comm.launch``: one :class:`RunResult` per spec, in order.

    Models and data are built on the host with the seeded CPU generator and moved to
    :func:`companion.comm.device`; data-parallel runs train a DDP model.
    """
    device = comm.device()
    src = task.source()
    results = []
    for spec in specs:
        model = task.model().to(device)
        for p in model.parameters():  # identical start on every rank
            dist.broadcast(p.data, src=0)
        optimizer = task.optimizer(model)
        batches = (b.to(device) for b in lm.token_batches(src, task.batch_size, task.seq_len,
                                                          seed=task.seed, rank=rank,
                                                          world_size=world_size))
        timeline = comm.Timeline(rank)
        net = comm.ModelledLink(spec.link, timeline=timeline)
        trained, hook = model, None
        if spec.schedule.method == "data_parallel":
            trained, hook = ddp.wrap(model, net, bucket_cap_mb=spec.bucket_cap_mb)
        dist.barrier()
        timeline.reset()
        t0 = time.perf_counter()
        losses, step_end_s, outer = train_loop(trained, optimizer, batches, net, schedule=spec.schedule,
                                               n_steps=spec.n_steps, world_size=world_size,
                                               ddp_hook=hook, track_progress=spec.track_progress)
        t1 = time.perf_counter()
        if outer is not None:
            outer.finish(model)
        t2 = time.perf_counter()
        if hook is not None:
            hook.close()
        eval_loss = (lm.evaluate(model, src, task.eval_seqs, task.seq_len, seed=task.seed)
                     if rank == 0 and spec.evaluate else float("nan"))
        with torch.no_grad():
            param_norm = float(parameters_to_vector(model.parameters()).norm())
        results.append(RunResult(
            name=spec.name or spec.schedule.label(), rank=rank, losses=losses,
            step_end_s=[t - t0 for t in step_end_s],
            eval_loss=float(eval_loss), train_s=t1 - t0, drain_s=t2 - t1,
            tokens=spec.n_steps * task.batch_size * task.seq_len, bytes_sent=net.bytes_sent,
            param_norm=param_norm, spans=timeline.spans,
            buckets=[] if hook is None else hook.records,
            delta_products=[] if outer is None else list(outer.delta_products)))
    return results
