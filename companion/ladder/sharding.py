"""Megatron-style tensor-parallel sharding of a :class:`~companion.ladder.Decoder`'s weights.

Each layer has two linear pairs, and in each pair the first is split by *output* features and the
second by *input* features (Shoeybi et al., 2019), so a rank computes its part of both with no
communication in between and one all-reduce completes the pair. A parallel block (GPT-J / PaLM)
shards the same way; its rank adds the attention's and the MLP's partial sums before the one
all-reduce of the layer, which completes both, since a sum of sums is a sum:

| parameter            | style      | what rank ``r`` keeps                                      |
| -------------------- | ---------- | ---------------------------------------------------------- |
| ``attn.qkv``         | column-qkv | rows of its heads, taken from each of q, k and v           |
| ``attn.proj.weight`` | row        | columns of its heads                                       |
| ``mlp.fc``           | column     | its block of hidden units (weight rows and bias)           |
| ``mlp.proj.weight``  | row        | its block of hidden units (weight columns)                 |
| row-parallel biases  | rank-0     | rank 0 keeps the bias and the others zeros, so the sum of  |
|                      |            | the partial outputs carries it exactly once                |
| everything else      | replicated | embeddings, norms and head, identical on every rank        |
"""

from __future__ import annotations

import torch

from companion.ladder.model import Decoder, _check_tp
from companion.lm import GPTConfig

#: Parallel style of every sharded parameter, keyed by its name inside a block.
TP_PLAN = {
    "attn.qkv.weight": "column-qkv",
    "attn.qkv.bias": "column-qkv",
    "attn.proj.weight": "row",
    "attn.proj.bias": "rank-0",
    "mlp.fc.weight": "column",
    "mlp.fc.bias": "column",
    "mlp.proj.weight": "row",
    "mlp.proj.bias": "rank-0",
}


def plan_style(name: str) -> str:
    """Parallel style of parameter ``name`` (a state-dict key): a :data:`TP_PLAN` value or "replicated"."""
    parts = name.split(".")
    if parts[0] == "blocks":
        return TP_PLAN.get(".".join(parts[2:]), "replicated")
    return "replicated"


def _check_rank(tp_rank: int, tp_size: int) -> None:
    if not isinstance(tp_rank, int) or not 0 <= tp_rank < tp_size:
        raise ValueError(f"tp_rank must be an int in [0, tp_size={tp_size}), got {tp_rank!r}")


def _shard(t: torch.Tensor, style: str, tp_rank: int, tp_size: int) -> torch.Tensor:
    if style == "column":
        return t.chunk(tp_size, dim=0)[tp_rank]
    if style == "column-qkv":  # (3 C, ...) = [q; k; v]: take this rank's heads from each
        return torch.cat([part.chunk(tp_size, dim=0)[tp_rank] for part in t.chunk(3, dim=0)])
    if style == "row":
        return t.chunk(tp_size, dim=1)[tp_rank]
    if style == "rank-0":
        return t if tp_rank == 0 else torch.zeros_like(t)
    return t


def shard_state_dict(state: dict, cfg: GPTConfig, *, tp_rank: int, tp_size: int) -> dict:
    """Rank ``tp_rank``'s shard of a full (single-rank) state dict, as cloned tensors."""
    _check_tp(cfg, tp_size)
    _check_rank(tp_rank, tp_size)
    return {k: _shard(v, plan_style(k), tp_rank, tp_size).clone() for k, v in state.items()}


def gather_state_dicts(shards: list[dict], cfg: GPTConfig) -> dict:
    """Inverse of :func:`shard_state_dict`: the full state dict from every rank's shard, in rank order."""
    tp_size = len(shards)
    _check_tp(cfg, tp_size)
    keys = set(shards[0])
    for r, shard in enumerate(shards):
        if set(shard) != keys:
            raise ValueError(f"shard {r} has different parameter names from shard 0")
    full = {}
    for k in shards[0]:
        parts = [s[k] for s in shards]
        style = plan_style(k)
        if style == "column":
            full[k] = torch.cat(parts, dim=0)
        elif style == "column-qkv":  # regroup as [q_0 .. q_p; k_0 .. k_p; v_0 .. v_p]
            thirds = [p.chunk(3, dim=0) for p in parts]
            full[k] = torch.cat([t[i] for i in range(3) for t in thirds], dim=0)
        elif style == "row":
            full[k] = torch.cat(parts, dim=1)
        else:  # replicated and rank-0 parameters: rank 0 holds the value
            full[k] = parts[0]
        full[k] = full[k].clone()
    return full


def shard_model(model: Decoder, *, tp_rank: int, tp_size: int) -> Decoder:
    """A :class:`Decoder` shard for rank ``tp_rank`` of ``tp_size``, same residual form as ``model``."""
    if model.tp_size != 1:
        raise ValueError(f"shard_model takes a full model (tp_size=1), got tp_size={model.tp_size}")
    shard = Decoder(model.cfg, ladder_layers=model.ladder_layers, parallel=model.parallel, tp_size=tp_size)
    shard.load_state_dict(shard_state_dict(model.state_dict(), model.cfg, tp_rank=tp_rank, tp_size=tp_size))
    return shard


def gather_model(shards: list[Decoder]) -> Decoder:
    """The full single-rank :class:`Decoder` from every rank's shard, in rank order."""
    if not shards:
        raise ValueError("gather_model needs at least one shard")
    if any(s.tp_size != len(shards) for s in shards):
        raise ValueError(f"every shard must have tp_size={len(shards)} (one shard per rank)")
    model = Decoder(shards[0].cfg, ladder_layers=shards[0].ladder_layers, parallel=shards[0].parallel)
    model.load_state_dict(gather_state_dicts([s.state_dict() for s in shards], shards[0].cfg))
    return model
