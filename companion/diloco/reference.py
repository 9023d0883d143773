"""A single-process reference: ``M`` workers simulated in lockstep, written as plainly as possible.

It shares nothing with :class:`~companion.diloco.algorithm.StreamingDiLoCo` but the schedule and
the data: the outer Nesterov step is written out by hand, the average is a Python sum in rank
order, and the merge is the paper's formula. Tests check that real workers reproduce it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch

from companion import lm
from companion.diloco.fragments import assign_, flatten, make_fragments
from companion.diloco.reducers import payload_nbytes, roundtrip
from companion.diloco.schedule import FragmentSchedule
from companion.diloco.spec import RunSpec


@dataclass
class ReferenceResult:
    """``outer_params``: ``{name: tensor}`` at the end; ``eval_steps``/``eval_losses`` of the outer
    parameters; ``local_params``: each worker's final parameters; ``sync_bytes``: ``{step: bytes}``
    one worker sent."""

    outer_params: dict[str, torch.Tensor]
    eval_steps: list[int]
    eval_losses: list[float]
    local_params: list[dict[str, torch.Tensor]]
    sync_bytes: dict[int, int] = field(default_factory=dict)


def simulate(spec: RunSpec, n_workers: int = 2, device: torch.device | str = "cpu") -> ReferenceResult:
    """Run ``spec`` with ``n_workers`` simulated workers in this process, on ``device``.

    The model is built on the CPU with the seeded generator and then moved, so a GPU run starts
    from the same weights as a CPU run; batches are drawn on the CPU and moved per step.
    """
    if n_workers < 1:
        raise ValueError(f"n_workers must be >= 1, got {n_workers}")
    device = torch.device(device)
    src = spec.source()
    init = spec.initial_model().to(device)
    models = [copy.deepcopy(init) for _ in range(n_workers)]
    opts = [spec.inner_optimizer(m) for m in models]
    streams = [(b.to(device) for b in lm.token_batches(src, spec.batch_size, spec.seq_len, spec.seed, r, n_workers))
               for r in range(n_workers)]
    eval_at = set(spec.eval_steps())
    evals: list[float] = []
    sync_bytes: dict[int, int] = {}

    if spec.method == "data_parallel":
        for t in range(1, spec.steps + 1):
            grads = []
            for m, batches in zip(models, streams):
                m.zero_grad(set_to_none=True)
                lm.lm_loss(m, next(batches)).backward()
                grads.append(torch.cat([p.grad.reshape(-1) for p in m.parameters()]))
            mean = sum(grads[1:], grads[0]) / n_workers
            for m, opt in zip(models, opts):
                offset = 0
                for p in m.parameters():
                    p.grad.copy_(mean[offset : offset + p.numel()].view_as(p))
                    offset += p.numel()
                opt.step()
            sync_bytes[t] = 4 * mean.numel()
            if t in eval_at:
                evals.append(lm.evaluate(models[0], src, spec.eval_seqs, spec.seq_len, spec.seed))
        outer = {n: p.detach().clone() for n, p in models[0].named_parameters()}
        return ReferenceResult(outer, sorted(eval_at), evals, [_params(m) for m in models], sync_bytes)

    sched = FragmentSchedule(spec.H, spec.n_fragments, spec.tau)
    frags = [make_fragments(m, spec.n_fragments, pattern=spec.pattern) for m in models]
    P = spec.n_fragments
    global_ = [flatten(frags[0][p].params) for p in range(P)]  # theta_global_p
    momentum = [torch.zeros_like(g) for g in global_]  # outer momentum buffer b_p
    in_flight: dict[int, list[torch.Tensor]] = {}  # fragment -> what each worker sent
    mu, eta = spec.outer_momentum, spec.outer_lr

    def outer_view() -> lm.GPT:
        view = copy.deepcopy(init)
        for p, frag in enumerate(make_fragments(view, P, pattern=spec.pattern)):
            assign_(frag.params, global_[p])
        return view

    def apply(q: int) -> None:
        sent = in_flight.pop(q)
        delta = sum(sent[1:], sent[0]) / n_workers
        # outer SGD with Nesterov momentum, as torch.optim.SGD(nesterov=True) defines it
        momentum[q] = mu * momentum[q] + delta
        step = delta + mu * momentum[q] if mu > 0 else delta
        global_[q] = global_[q] - eta * step
        for f in frags:
            local = flatten(f[q].params)
            assign_(f[q].params, spec.alpha * local + (1 - spec.alpha) * global_[q])

    for t in range(1, spec.steps + 1):
        for m, opt, batches in zip(models, opts, streams):
            opt.zero_grad(set_to_none=True)
            lm.lm_loss(m, next(batches)).backward()
            opt.step()
        p = sched.launch_at(t)
        if p is not None:
            in_flight[p] = [roundtrip(global_[p] - flatten(f[p].params), spec.bits, spec.quant_format) for f in frags]
            sync_bytes[t] = payload_nbytes(global_[p].numel(), spec.bits, spec.quant_format)
        q = sched.apply_at(t)
        if q is not None:
            apply(q)
        if t in eval_at and t < spec.steps:
            evals.append(lm.evaluate(outer_view(), src, spec.eval_seqs, spec.seq_len, spec.seed))
    for q in list(in_flight):  # a sync launched in the last tau steps lands after the loop
        apply(q)
    evals.append(lm.evaluate(outer_view(), src, spec.eval_seqs, spec.seq_len, spec.seed))
    outer = {n: p.detach().clone() for n, p in outer_view().named_parameters()}
    return ReferenceResult(outer, sorted(eval_at), evals, [_params(m) for m in models], sync_bytes)


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}
