"""The APIs practitioners use: ``torch.distributed.tensor.parallel`` and functional collectives.

:mod:`companion.ladder.sharding` cuts the weights by hand. PyTorch's own tensor-parallel API does
the same from a *plan*, a map from submodule names to parallel styles, applied with
``parallelize_module(model, mesh, plan)`` on a 1-D :class:`~torch.distributed.device_mesh.DeviceMesh`:

| submodule   | style              | what it does                                                     |
| ----------- | ------------------ | ---------------------------------------------------------------- |
| ``attn.qkv``  | ``ColwiseParallel`` | weight and bias ``Shard(0)``: rank ``r`` keeps block ``r`` of rows |
| ``attn.proj`` | ``RowwiseParallel`` | weight ``Shard(1)``, bias replicated; the output is all-reduced    |
| ``mlp.fc``    | ``ColwiseParallel`` | as ``attn.qkv``                                                  |
| ``mlp.proj``  | ``RowwiseParallel`` | as ``attn.proj``                                                 |

With ``use_local_output=True`` (the default) every style hands plain local tensors to the code
around it, so :class:`~companion.ladder.Decoder`'s attention, GELU and residual adds run unchanged
on each rank's part. Three things need care.

**The fused QKV weight.** ``attn.qkv.weight`` is ``(3 C, C)`` with rows ``[q; k; v]``, each block
ordered by head. ``ColwiseParallel`` splits the rows into ``p`` contiguous blocks: at ``p = 2``
rank 0 gets rows ``0 .. 3C/2``, all of ``q`` and the first half of ``k``, and rank 1 the rest of
``k`` and all of ``v``. The shapes still fit, so nothing fails: rank 0 silently uses the keys of
heads 0 and 1 as the queries of its heads and those of heads 2 and 3 as its keys, and the logits
are wrong (:func:`dtensor_logits_worker` measures how wrong with ``interleave=False``). The cure
is to permute the rows *before* sharding, to ``[q_0; k_0; v_0; q_1; k_1; v_1; ...]`` where ``q_r``
are the rows of rank ``r``'s heads (:func:`interleave_qkv`), so that block ``r`` is exactly the
``column-qkv`` shard of :data:`companion.ladder.TP_PLAN`. The permuted weight belongs to ``p``:
a checkpoint saved from the DTensor model (``full_tensor()``) is in that order and must be
permuted back before it loads at another degree.

**The head count.** Each rank's ``qkv`` now returns ``3 C / p`` features, so the attention must
split them into ``n_heads / p`` heads; ``parallelize_module`` knows nothing of heads, and
:func:`parallelize_decoder` sets ``attn.n_heads`` itself. ``p`` must divide ``n_heads``.

**Where the all-reduce is.** ``RowwiseParallel`` sums the partial outputs inside ``proj`` (its
output is ``Partial`` and is redistributed to ``Replicate``), so the decoder itself communicates
nothing: it runs with :class:`~companion.ladder.NoCommunication`. The redistribution is issued
with ``async_op=True`` and the local output is an ``AsyncCollectiveTensor``, waited on at its first
use, which in the Ladder model is the residual add one module later. The Ladder's deferred wait
comes with the API, the same mechanism as :class:`~companion.ladder.communicators.FunctionalCollectives`.

Every worker here builds the model from a seed, as :mod:`companion.ladder.workers` does, so the
hand-sharded, the DTensor and the functional-collective runs compare the same weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from companion import comm
from companion.ladder.communicators import FunctionalCollectives, NoCommunication
from companion.ladder.model import Decoder, _check_tp
from companion.ladder.sharding import _shard
from companion.ladder.workers import _full_model, _tp_shard
from companion.lm import GPTConfig

#: The residual forms compared: the standard model and the all-Ladder one.
FORMS = ("standard", "ladder")

#: The ways of running a model at TP = p that :func:`compare_tp_apis` compares.
APIS = ("hand", "dtensor", "funcol", "dtensor-naive")


def check_world_size(cfg: GPTConfig, world_size: int) -> None:
    """Raise :class:`ValueError` unless ``world_size`` ranks can share ``cfg``'s heads and MLP."""
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive int, got {world_size!r}")
    if cfg.n_heads % world_size:
        divisors = [d for d in range(1, cfg.n_heads + 1) if cfg.n_heads % d == 0]
        raise ValueError(
            f"n_heads={cfg.n_heads} is not divisible by the tensor-parallel world size "
            f"{world_size}: each rank owns whole attention heads; use a world size in {divisors} "
            "or a model whose n_heads is a multiple of it"
        )
    _check_tp(cfg, world_size)  # the MLP width too


def dtensor_plan() -> dict:
    """The ``parallelize_module`` plan of the Megatron layers (``*`` matches every block)."""
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel

    return {
        "blocks.*.attn.qkv": ColwiseParallel(),
        "blocks.*.attn.proj": RowwiseParallel(),
        "blocks.*.mlp.fc": ColwiseParallel(),
        "blocks.*.mlp.proj": RowwiseParallel(),
    }


def interleave_qkv(t: torch.Tensor, tp_size: int) -> torch.Tensor:
    """Rows ``[q; k; v]`` of a fused QKV weight or bias reordered to ``[q_0; k_0; v_0; q_1; ...]``.

    Block ``r`` of ``tp_size`` contiguous blocks of the result is rank ``r``'s ``column-qkv`` shard
    (the rows of its heads from each of ``q``, ``k`` and ``v``), which is what ``ColwiseParallel``
    (``Shard(0)``) then gives rank ``r``.
    """
    if not isinstance(tp_size, int) or tp_size < 1:
        raise ValueError(f"tp_size must be a positive int, got {tp_size!r}")
    if t.shape[0] % (3 * tp_size):
        raise ValueError(f"a fused QKV tensor of {t.shape[0]} rows does not split into 3 x {tp_size} blocks")
    return torch.cat([_shard(t, "column-qkv", r, tp_size) for r in range(tp_size)])


def parallelize_decoder(model: Decoder, mesh, *, interleave: bool = True) -> Decoder:
    """``model`` (a full, single-rank :class:`Decoder`) tensor-parallel over the 1-D ``mesh``, in place.

    Permutes every fused QKV weight for the mesh size (unless ``interleave=False``, which shows
    the mistake), sets each attention's local head count and applies :func:`dtensor_plan`. Run
    the result with ``comm=None``: the all-reduces are inside the row-parallel projections.
    """
    from torch.distributed.tensor.parallel import parallelize_module

    if model.tp_size != 1:
        raise ValueError(f"parallelize_decoder takes a full model (tp_size=1), got tp_size={model.tp_size}")
    if mesh.ndim != 1:
        raise ValueError(f"parallelize_module needs a 1-D device mesh, got {mesh.ndim} dimensions")
    p = mesh.size()
    check_world_size(model.cfg, p)
    with torch.no_grad():
        for block in model.blocks:
            if interleave:
                block.attn.qkv.weight.copy_(interleave_qkv(block.attn.qkv.weight, p))
                block.attn.qkv.bias.copy_(interleave_qkv(block.attn.qkv.bias, p))
            block.attn.n_heads = model.cfg.n_heads // p  # heads on this rank
    return parallelize_module(model, mesh, dtensor_plan())


def dtensor_logits_worker(
    rank: int, world_size: int, cfg: GPTConfig, tokens: torch.Tensor, seed: int = 0,
    state: dict | None = None,
) -> dict:
    """One rank of every API of :data:`APIS` on both residual forms of :data:`FORMS`.

    Returns ``{"logits": {(api, form): (B, T, vocab) CPU tensor}, "qkv_shard_equal": bool,
    "rowwise_output_async": bool, "deferred": (completed at issue, completed after wait, sum ok)}``:
    whether the interleaved DTensor ``qkv`` shard equals the hand ``column-qkv`` shard in every
    layer, whether ``RowwiseParallel`` hands back an ``AsyncCollectiveTensor``, and how the
    functional all-reduce behaves before and after its first use.
    """
    from torch.distributed import _functional_collectives as funcol
    from torch.distributed.device_mesh import init_device_mesh

    dev = comm.device()
    tokens = tokens.to(dev)
    mesh = init_device_mesh(dev.type, (world_size,))
    out: dict = {"logits": {}}
    async_outputs = []
    for form in FORMS:
        k = cfg.n_layers if form == "ladder" else 0
        full = _full_model(cfg, seed, state).with_ladder_layers(k)
        hand = _tp_shard(full, rank, world_size)
        dtensor = parallelize_decoder(full.with_ladder_layers(k).to(dev), mesh)
        naive = parallelize_decoder(full.with_ladder_layers(k).to(dev), mesh, interleave=False)
        if form == "standard":
            out["qkv_shard_equal"] = all(
                torch.equal(d.attn.qkv.weight.to_local(), h.attn.qkv.weight)
                and torch.equal(d.attn.qkv.bias.to_local(), h.attn.qkv.bias)
                for d, h in zip(dtensor.blocks, hand.blocks)
            )
            dtensor.blocks[0].mlp.proj.register_forward_hook(
                lambda mod, inputs, output: async_outputs.append(isinstance(output, funcol.AsyncCollectiveTensor)))
        with torch.no_grad():
            out["logits"]["hand", form] = hand(tokens, comm.ModelledLink(None)).cpu()
            out["logits"]["funcol", form] = hand(tokens, FunctionalCollectives()).cpu()
            out["logits"]["dtensor", form] = dtensor(tokens, NoCommunication()).cpu()
            out["logits"]["dtensor-naive", form] = naive(tokens, NoCommunication()).cpu()
    out["rowwise_output_async"] = bool(async_outputs) and all(async_outputs)
    t = torch.full((3,), float(rank + 1), device=dev)
    work = FunctionalCollectives().all_reduce(t, async_op=True)
    at_issue = work.completed
    work.wait()
    out["deferred"] = (at_issue, work.completed, bool(torch.all(t == world_size * (world_size + 1) / 2)))
    return out


@dataclass(frozen=True)
class TPApiComparison:
    """Logits of one model at TP = ``world_size`` through every API, and the single-process logits.

    ``logits[api, form]`` lists each rank's ``(B, T, vocab)`` logits; ``reference[form]`` is the
    unsharded model's. ``qkv_shard_equal``, ``rowwise_output_async`` and ``deferred`` are rank
    0's findings of :func:`dtensor_logits_worker`.
    """

    world_size: int
    logits: dict
    reference: dict
    qkv_shard_equal: bool
    rowwise_output_async: bool
    deferred: tuple

    def gap(self, api: str, form: str, against: str = "single") -> float:
        """Largest ``|logits|`` difference of ``api`` from ``against`` (an API or "single"), over ranks."""
        if (api, form) not in self.logits:
            raise KeyError(f"no logits for api={api!r}, form={form!r}: apis {APIS}, forms {FORMS}")
        others = ([self.reference[form]] * self.world_size if against == "single"
                  else self.logits[against, form])
        return max(float((a - b).abs().max()) for a, b in zip(self.logits[api, form], others))


def compare_tp_apis(
    cfg: GPTConfig, tokens: torch.Tensor, world_size: int = 2, *, seed: int = 0, state: dict | None = None,
    timeout_s: float = 120.0,
) -> TPApiComparison:
    """Run :func:`dtensor_logits_worker` on ``world_size`` gloo processes and the full model here."""
    check_world_size(cfg, world_size)
    results = comm.launch(dtensor_logits_worker, world_size, cfg, tokens, seed, state, timeout_s=timeout_s)
    reference = {}
    for form in FORMS:
        model = _full_model(cfg, seed, state).with_ladder_layers(cfg.n_layers if form == "ladder" else 0)
        with torch.no_grad():
            reference[form] = model(tokens)
    logits = {key: [r["logits"][key] for r in results] for key in results[0]["logits"]}
    return TPApiComparison(world_size, logits, reference, results[0]["qkv_shard_equal"],
                           results[0]["rowwise_output_async"], results[0]["deferred"])
