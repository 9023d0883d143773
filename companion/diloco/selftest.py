"""Worker functions for the tests (module level, so that spawned workers can import them)."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parameters_to_vector

from companion import comm, lm
from companion.diloco.spec import RunSpec
from companion.lm import ddp

HOWS = ("hand", "allreduce_hook", "timed")


def dp_three_ways(rank: int, world_size: int, spec: RunSpec, steps: int) -> dict:
    """The same data-parallel training by hand (the previous flatten / all-reduce / divide),
    by DDP with torch's ``allreduce_hook`` and by DDP with :class:`companion.lm.ddp.TimedAllReduce`."""
    src = spec.source()
    out = {}
    for how in HOWS:
        model = spec.initial_model()
        opt = spec.inner_optimizer(model)
        batches = lm.token_batches(src, spec.batch_size, spec.seq_len, spec.seed, rank, world_size)
        net = comm.ModelledLink(None, timeline=comm.Timeline(rank))
        trained = model
        if how == "allreduce_hook":
            trained = DistributedDataParallel(model, bucket_cap_mb=spec.bucket_cap_mb,
                                              gradient_as_bucket_view=True)
            trained.register_comm_hook(None, default_hooks.allreduce_hook)
        elif how == "timed":
            trained, hook = ddp.wrap(model, net, bucket_cap_mb=spec.bucket_cap_mb)
        losses = []
        for t in range(1, steps + 1):
            opt.zero_grad(set_to_none=True)
            tokens = next(batches)
            if how == "timed":
                loss = ddp.forward_backward(trained, hook, net.timeline, tokens, t)
            else:
                loss = lm.lm_loss(trained, tokens)
                loss.backward()
            if how == "hand":  # the previous baseline: one flat buffer, all-reduce, divide, copy back
                params = list(model.parameters())
                grads = torch.cat([p.grad.reshape(-1) for p in params])
                dist.all_reduce(grads)
                grads /= world_size
                offset = 0
                for p in params:
                    p.grad.copy_(grads[offset : offset + p.numel()].view_as(p))
                    offset += p.numel()
            opt.step()
            losses.append(loss.item())
        out[how] = dict(losses=losses, params=parameters_to_vector(model.parameters()).detach().clone())
        if how == "timed":
            hook.close()
            out["buckets"] = hook.records
            out["overlap"] = ddp.bucket_overlap(net.timeline.spans)
            out["n_params"] = sum(p.numel() for p in model.parameters())
    return out
