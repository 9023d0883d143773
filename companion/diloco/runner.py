"""Real workers: one process per worker through :func:`companion.comm.launch`, gloo in between.

:func:`train_worker` is the function every rank runs (importable, so ``comm.launch`` and
``torchrun`` can both start it); :func:`run` launches it and gathers what the ranks return into a
:class:`RunResult`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from companion import lm
from companion.lm import ddp
from companion.diloco.algorithm import StreamingDiLoCo
from companion.diloco.fragments import flatten
from companion.diloco.ledger import ByteLedger, SyncRecord
from companion.diloco.reducers import LinkReducer
from companion.diloco.spec import RunSpec


@dataclass
class RunResult:
    """What a run produced.

    Attributes
    ----------
    spec : RunSpec
    eval_steps, eval_losses : list
        Held-out loss (nats) of the outer parameters after those inner steps (rank 0).
    train_losses : list of list of float
        Per rank, the training loss of every inner step (of its local parameters).
    ledgers : list of ByteLedger
        Per rank, the payload bytes it sent, per sync.
    bytes_on_link : list of int
        Per rank, bytes the collectives really moved through its modelled link.
    spans : list
        ``comm.Span`` of every rank (compute: forward + backward; comm: the collectives).
    outer_params : dict
        Rank 0's final outer parameters ``{name: tensor}``.
    link_waits_s : list of list of float
        Per rank, per sync, seconds spent waiting for the modelled link alone
        (:attr:`~companion.diloco.reducers.LinkReducer.link_waits_s`; empty for data-parallel).
    wall_s : float
        Seconds of the training loop on rank 0.
    buckets : list of list of BucketRecord
        Per rank, data-parallel only: every DDP bucket's all-reduce
        (:class:`companion.lm.ddp.BucketRecord`, times on the rank's timeline); empty otherwise.
    """

    spec: RunSpec
    eval_steps: list
    eval_losses: list
    train_losses: list
    ledgers: list
    bytes_on_link: list
    spans: list
    outer_params: dict
    wall_s: float
    link_waits_s: list
    buckets: list = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.eval_losses[-1]


def _broadcast_initial_weights(model: torch.nn.Module) -> None:
    # Identical starting points on every worker (prime-diloco once forgot this).
    for p in model.parameters():
        dist.broadcast(p.data, src=0)


def train_worker(rank: int, world_size: int, spec: RunSpec) -> dict:
    """Train ``spec`` as worker ``rank`` of ``world_size``; returns a picklable dict (CPU tensors).

    The model and the data are built on the host with the seeded CPU generator, then moved to
    :func:`companion.comm.device` (the rank's GPU under NCCL), so a CPU run gives the same
    numbers whatever the default device. Data-parallel runs train a
    :class:`~torch.nn.parallel.DistributedDataParallel` model (:func:`companion.lm.ddp.wrap`).
    """
    from companion import comm

    device = comm.device()
    src = spec.source()
    model = spec.initial_model().to(device)
    _broadcast_initial_weights(model)
    timeline = comm.Timeline(rank)
    link = None if spec.link_gbps is None else comm.Link.from_gbps(spec.link_latency_s, spec.link_gbps)
    net = comm.ModelledLink(link, timeline=timeline)
    batches = (b.to(device) for b in lm.token_batches(src, spec.batch_size, spec.seq_len, spec.seed, rank,
                                                      world_size))
    opt = spec.inner_optimizer(model)
    ledger = ByteLedger()
    eval_at = set(spec.eval_steps())
    train_losses, evals = [], []
    reducer = LinkReducer(net)
    buckets = []

    def evaluate(m: torch.nn.Module) -> float:
        return lm.evaluate(m, src, spec.eval_seqs, spec.seq_len, spec.seed)

    def forward_backward(t: int) -> None:
        begin = ddp.clock(device)  # on a GPU: once the compute stream is done, never NCCL's
        opt.zero_grad(set_to_none=True)
        loss = lm.lm_loss(model, next(batches))
        loss.backward()
        timeline.record(f"step {t}", "compute", begin, ddp.clock(device))
        train_losses.append(loss.item())

    if spec.method == "data_parallel":
        ddp_model, hook = ddp.wrap(model, net, bucket_cap_mb=spec.bucket_cap_mb)
    net.barrier()
    timeline.reset()
    start = time.perf_counter()
    if spec.method == "data_parallel":
        for t in range(1, spec.steps + 1):
            opt.zero_grad(set_to_none=True)
            # DDP averages the gradients bucket by bucket during backward (allreduce_hook's sum)
            loss = ddp.forward_backward(ddp_model, hook, timeline, next(batches), t)
            train_losses.append(loss.item())
            with net.compute(f"inner step {t}"):
                opt.step()
            ledger.record(t, -1, hook.step_nbytes(t))
            if t in eval_at and rank == 0:
                evals.append(evaluate(model))
        hook.close()
        buckets = hook.records
        outer = {n: p.detach().clone() for n, p in model.named_parameters()}
    else:
        algo = StreamingDiLoCo(
            model, opt, reducer, sync_every=spec.H, n_fragments=spec.n_fragments,
            fragment_sync_delay=spec.tau, fragment_update_alpha=spec.alpha, pattern=spec.pattern,
            outer_lr=spec.outer_lr, outer_momentum=spec.outer_momentum, quantize_bits=spec.bits, ledger=ledger,
            quantize_format=spec.quant_format,
        )
        with algo:
            for t in range(1, spec.steps + 1):
                forward_backward(t)
                opt.step()  # the post-step hook launches and applies syncs
                if t in eval_at and t < spec.steps and rank == 0:
                    evals.append(evaluate(_outer_model(model, algo)))
        outer = algo.outer_state_dict()
        if rank == 0:
            evals.append(evaluate(_outer_model(model, algo)))
    wall = time.perf_counter() - start
    net.barrier()
    return dict(
        rank=rank, eval_steps=sorted(eval_at), eval_losses=evals, train_losses=train_losses,
        records=[(r.step, r.fragment, r.nbytes) for r in ledger.records], bytes_on_link=net.bytes_sent,
        spans=timeline.spans, outer={n: v.cpu() for n, v in outer.items()} if rank == 0 else None, wall_s=wall,
        link_waits_s=reducer.link_waits_s, buckets=buckets,
    )


def _outer_model(model: torch.nn.Module, algo: StreamingDiLoCo) -> torch.nn.Module:
    """A copy of ``model`` holding the outer (global) parameters."""
    view = copy.deepcopy(model)
    state = algo.outer_state_dict()
    with torch.no_grad():
        for name, p in view.named_parameters():
            p.copy_(state[name])
    return view


def train_many(rank: int, world_size: int, specs: list) -> list[dict]:
    """:func:`train_worker` for several specs in a row, in the same processes (one launch, one start-up)."""
    return [train_worker(rank, world_size, spec) for spec in specs]


def measure_inner_step_s(spec: RunSpec, *, steps: int = 6, warmup: int = 2) -> float:
    """Median wall time (s) of one inner step (forward, backward, AdamW) of ``spec``'s model, here.

    One thread, as each worker of :func:`run_many` has; no communication. Used to size a
    modelled link relative to this machine's compute, so that a check of the form "the
    transfer fits under one step" holds on a fast machine as on a slow one.
    """
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got {steps}, {warmup}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = spec.initial_model()
        opt = spec.inner_optimizer(model)
        batches = lm.token_batches(spec.source(), spec.batch_size, spec.seq_len, spec.seed, 0, 1)
        times = []
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            lm.lm_loss(model, next(batches)).backward()
            opt.step()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    return float(sorted(times)[len(times) // 2])


def run_many(specs: list, world_size: int = 2, timeout_s: float = 300.0) -> list["RunResult"]:
    """Train every spec of ``specs`` one after the other on ``world_size`` real worker processes.

    Starting processes costs seconds (each imports torch), so a notebook launches once and runs
    all its configurations inside; each run starts from the same broadcast weights.
    """
    from companion import comm

    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    specs = list(specs)
    if not specs or not all(isinstance(s, RunSpec) for s in specs):
        raise ValueError("specs must be a non-empty list of RunSpec")
    per_rank = comm.launch(train_many, world_size, specs, timeout_s=timeout_s, threads_per_rank=1)
    return [_gather(spec, [per_rank[r][i] for r in range(world_size)]) for i, spec in enumerate(specs)]


def run(spec: RunSpec, world_size: int = 2, timeout_s: float = 120.0) -> RunResult:
    """Train ``spec`` on ``world_size`` real worker processes (one thread each)."""
    return run_many([spec], world_size, timeout_s)[0]


def _gather(spec: RunSpec, results: list[dict]) -> RunResult:
    r0 = results[0]
    ledgers = [ByteLedger([SyncRecord(*rec) for rec in r["records"]]) for r in results]
    spans = [s for r in results for s in r["spans"]]
    return RunResult(
        spec=spec, eval_steps=r0["eval_steps"], eval_losses=r0["eval_losses"],
        train_losses=[r["train_losses"] for r in results], ledgers=ledgers,
        bytes_on_link=[r["bytes_on_link"] for r in results], spans=spans, outer_params=r0["outer"],
        wall_s=r0["wall_s"], link_waits_s=[r["link_waits_s"] for r in results],
        buckets=[r["buckets"] for r in results],
    )


def outer_flat(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """All parameters of a ``{name: tensor}`` dict as one fp32 vector, in name order."""
    return flatten([params[k] for k in sorted(params)])


def torchrun_job(steps: int = 24, method: str = "diloco", n_fragments: int = 2, tau: int = 1,
                 bits: int | None = 4):
    """A small Streaming DiLoCo run for :mod:`companion.comm.torchrun`: ``(train_many, ([spec],))``.

    Bare gloo (no modelled link): the losses and bytes depend only on the seed, so a torchrun
    run and a :func:`companion.comm.launch` run must agree exactly.
    """
    spec = RunSpec(method=method, steps=steps, H=12, n_fragments=n_fragments, tau=tau, alpha=0.5, bits=bits)
    return train_many, ([spec],)
