"""A pre-norm decoder whose residual stream is standard, Ladder or parallel, on one rank or a TP shard.

Number the sublayers attention, MLP, attention, MLP, ... as modules ``j = 0 .. 2L-1`` and write
``h_j`` for module ``j`` with its pre-norm, ``AR`` for the tensor-parallel all-reduce. Then

- standard:  ``x_{j+1} = x_j + AR(h_j(x_j))``     (module j reads everything before it);
- Ladder:    ``x_{j+1} = x_j + AR(h_j(x_{j-1}))`` (module j reads the stream without module j-1).

The Ladder paper's other baseline, the *parallel* block of GPT-J and PaLM, sums both modules of
layer ``i`` read from the same normed stream (one norm, ``ln_1``, as in the authors'
``gpt_parallel_TP.py``; ``ln_2`` stays in the state dict, unused, so one set of weights serves
all three forms), so a rank adds its two partial sums before one all-reduce per layer:

- parallel:  ``x_{i+1} = x_i + AR(attn_i(ln_1(x_i)) + mlp_i(ln_1(x_i)))``.

One loop implements standard and Ladder. Outputs whose all-reduce is in flight wait in a queue; before module ``j``
runs, the queue is drained down to ``keep_j`` entries: 0 for a standard module, 1 for a Ladder module,
whose input lacks only its predecessor's output. That one entry is the all-reduce that overlaps
module ``j``'s compute. ``ladder_layers = k`` converts the upper ``k`` layers, as in the authors'
Llama conversion configs; the first module of the converted range still reads the full stream.

Parameter names and shapes at ``tp_size = 1`` are those of :class:`companion.lm.GPT`, so a trained
``GPT`` loads into a :class:`Decoder` (:meth:`Decoder.from_gpt`). At ``tp_size = p`` a
:class:`Decoder` holds one Megatron shard (see :mod:`companion.ladder.sharding`): ``h_j`` returns the
rank's partial sum and the all-reduce completes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from companion.ladder.communicators import Communicator, NoCommunication
from companion.lm import GPT, GPTConfig


def _check_tp(cfg: GPTConfig, tp_size: int) -> None:
    if not isinstance(tp_size, int) or tp_size < 1:
        raise ValueError(f"tp_size must be a positive int, got {tp_size!r}")
    if cfg.n_heads % tp_size:
        raise ValueError(
            f"n_heads={cfg.n_heads} is not divisible by tp_size={tp_size}: each rank owns whole "
            "attention heads; pick a tp_size that divides n_heads"
        )
    hidden = cfg.mlp_ratio * cfg.d_model
    if hidden % tp_size:
        raise ValueError(f"MLP width {hidden} is not divisible by tp_size={tp_size}")


def check_ladder_layers(cfg: GPTConfig, ladder_layers: int) -> int:
    """Validate ``ladder_layers`` (how many upper layers use the Ladder residual) and return it."""
    if not isinstance(ladder_layers, int) or not 0 <= ladder_layers <= cfg.n_layers:
        raise ValueError(
            f"ladder_layers must be an int in [0, n_layers={cfg.n_layers}], got {ladder_layers!r}"
        )
    return ladder_layers


def reads_stale_stream(module: int, n_layers: int, ladder_layers: int) -> bool:
    """True when module ``module`` (2 per layer) reads the stream without its predecessor's output.

    The converted range starts at module ``2 (n_layers - ladder_layers)``; every module after its
    first one is a Ladder module.
    """
    return module > 2 * (n_layers - ladder_layers)


def check_parallel(ladder_layers: int, parallel: bool) -> bool:
    """Validate the ``parallel`` flag against ``ladder_layers`` and return it as a bool."""
    if not isinstance(parallel, bool):
        raise ValueError(f"parallel must be True or False, got {parallel!r}")
    if parallel and ladder_layers:
        raise ValueError(
            f"parallel=True with ladder_layers={ladder_layers}: a parallel block has no Ladder form; "
            "pass ladder_layers=0 for the parallel model, or parallel=False for a Ladder one"
        )
    return parallel


def all_reduces_per_forward(n_layers: int, *, parallel: bool) -> int:
    """All-reduces one forward issues: ``n_layers`` for parallel blocks, ``2 n_layers`` otherwise.

    The Ladder residual moves its all-reduces, it does not remove any: standard and Ladder issue
    one per module.
    """
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ValueError(f"n_layers must be a positive int, got {n_layers!r}")
    return n_layers if parallel else 2 * n_layers


@dataclass
class KVCache:
    """Keys and values of the tokens seen so far, one ``(B, heads on this rank, T, head_dim)`` pair per layer."""

    keys: list = field(default_factory=list)
    values: list = field(default_factory=list)
    length: int = 0  # tokens already in the cache: the position of the next token


class ShardedAttention(nn.Module):
    """Causal self-attention over this rank's ``n_heads / tp_size`` heads.

    ``qkv`` is column-parallel (this rank's rows of q, k and v); ``proj`` is row-parallel (this
    rank's columns), so :meth:`forward` returns the rank's partial sum of the output projection.
    """

    def __init__(self, cfg: GPTConfig, tp_size: int):
        super().__init__()
        self.n_heads = cfg.n_heads // tp_size  # heads owned by this rank
        self.head_dim = cfg.d_model // cfg.n_heads
        width = self.n_heads * self.head_dim  # this rank's share of d_model
        self.qkv = nn.Linear(cfg.d_model, 3 * width)
        self.proj = nn.Linear(width, cfg.d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.n_heads * self.head_dim, dim=2)  # 3 x (B, T, h d)
        # (B, T, h d) -> (B, h, T, d)
        q, k, v = (z.view(B, T, self.n_heads, self.head_dim).transpose(1, 2) for z in (q, k, v))
        causal = True
        if cache is not None:
            if len(cache.keys) > layer:  # decoding: append this token's keys and values
                k = torch.cat([cache.keys[layer], k], dim=2)  # (B, h, T_past + T, d)
                v = torch.cat([cache.values[layer], v], dim=2)
                cache.keys[layer], cache.values[layer] = k, v
                causal = False  # one new token may look at every cached one
            else:  # prefill: the cache starts here
                cache.keys.append(k)
                cache.values.append(v)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # (B, h, T, d)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)  # (B, T, h d)
        return self.proj(y)  # (B, T, C) partial sum over this rank's heads


class ShardedMLP(nn.Module):
    """GELU MLP with a column-parallel ``fc`` and a row-parallel ``proj``; returns a partial sum."""

    def __init__(self, cfg: GPTConfig, tp_size: int):
        super().__init__()
        hidden = cfg.mlp_ratio * cfg.d_model // tp_size  # this rank's share of the hidden width
        self.fc = nn.Linear(cfg.d_model, hidden)
        self.proj = nn.Linear(hidden, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))  # (B, T, C)


class ShardedBlock(nn.Module):
    """One layer's two modules: ``attn(ln_1(.))`` and ``mlp(ln_2(.))``; the residual adds live in the Decoder."""

    def __init__(self, cfg: GPTConfig, tp_size: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)  # norms and embeddings are replicated on every rank
        self.attn = ShardedAttention(cfg, tp_size)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = ShardedMLP(cfg, tp_size)


class Decoder(nn.Module):
    """Token + position embedding, ``n_layers`` blocks, final norm and head; standard, Ladder or parallel.

    Parameters
    ----------
    cfg : companion.lm.GPTConfig
        Sizes; ``cfg.seq_len`` bounds prompt plus generated tokens.
    ladder_layers : int
        How many upper layers use the Ladder residual: 0 is the standard model,
        ``cfg.n_layers`` the full Ladder model ("ladder_layers" in the authors' conversion configs).
    parallel : bool
        Parallel blocks (GPT-J / PaLM): attention and MLP read the same normed stream, one
        all-reduce per layer. Needs ``ladder_layers = 0``.
    tp_size : int
        Tensor-parallel degree; the module holds one rank's shard of the weights.
    """

    def __init__(self, cfg: GPTConfig, *, ladder_layers: int = 0, parallel: bool = False, tp_size: int = 1):
        super().__init__()
        _check_tp(cfg, tp_size)
        self.cfg = cfg
        self.ladder_layers = check_ladder_layers(cfg, ladder_layers)
        self.parallel = check_parallel(self.ladder_layers, parallel)
        self.tp_size = tp_size
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(ShardedBlock(cfg, tp_size) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.apply(GPT._init_weights)  # same initialisation as the standard GPT of companion.lm

    @classmethod
    def from_gpt(cls, gpt: GPT, *, ladder_layers: int = 0, parallel: bool = False) -> "Decoder":
        """A single-rank Decoder with ``gpt``'s weights (copied) and the given residual form."""
        model = cls(gpt.cfg, ladder_layers=ladder_layers, parallel=parallel)
        model.load_state_dict(gpt.state_dict())
        return model

    def with_ladder_layers(self, ladder_layers: int) -> "Decoder":
        """A copy with the same weights whose upper ``ladder_layers`` layers use the Ladder residual.

        The copy has sequential blocks (``parallel=False``) whatever this model has.
        """
        model = copy.deepcopy(self)
        model.ladder_layers = check_ladder_layers(self.cfg, ladder_layers)
        model.parallel = False
        return model

    def with_parallel_blocks(self) -> "Decoder":
        """A copy with the same weights and parallel blocks (GPT-J / PaLM): a third function of them."""
        model = copy.deepcopy(self)
        model.ladder_layers, model.parallel = 0, True
        return model

    @property
    def architecture(self) -> str:
        """ "standard", "ladder" (every layer), "hybrid" (upper layers only) or "parallel"."""
        if self.parallel:
            return "parallel"
        if self.ladder_layers == 0:
            return "standard"
        return "ladder" if self.ladder_layers == self.cfg.n_layers else "hybrid"

    @property
    def n_modules(self) -> int:
        """Attention and MLP modules: two per layer."""
        return 2 * self.cfg.n_layers

    def _run_module(self, j: int, x: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        block = self.blocks[j // 2]
        if j % 2 == 0:
            return block.attn(block.ln_1(x), cache, j // 2)
        return block.mlp(block.ln_2(x))

    def forward(
        self,
        tokens: torch.Tensor,
        comm: Communicator | None = None,
        *,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, T, vocab)`` of LongTensor ``tokens (B, T)``.

        ``comm`` sums partial outputs over the TP ranks (``None``: one rank, no communication).
        With a ``cache`` the call either fills it (prefill, empty cache) or appends one token.
        """
        if comm is None:
            if self.tp_size != 1:
                raise ValueError(f"a shard of a tp_size={self.tp_size} model needs a communicator")
            comm = NoCommunication()
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, T), got {tuple(tokens.shape)}")
        B, T = tokens.shape
        start = 0 if cache is None else cache.length
        if cache is not None and start > 0 and T != 1:
            raise ValueError(f"a non-empty cache takes one token per call, got T={T}")
        if start + T > self.cfg.seq_len:
            raise ValueError(f"position {start + T} exceeds GPTConfig.seq_len={self.cfg.seq_len}")
        pos = torch.arange(start, start + T, device=tokens.device)  # (T,)
        x = self.tok_emb(tokens) + self.pos_emb(pos)  # (B, T, C), replicated on every rank
        if self.parallel:
            x = self._parallel_layers(x, comm, cache)
            if cache is not None:
                cache.length = start + T
            return self.head(self.ln_f(x))  # (B, T, vocab)
        in_flight: list = []  # (partial output, work) of modules whose sum is not yet in x
        for j in range(self.n_modules):
            # 1. Drain the queue to what module j may not see: nothing for a standard module,
            #    the previous module's output for a Ladder one (its all-reduce keeps running).
            keep = 1 if reads_stale_stream(j, self.cfg.n_layers, self.ladder_layers) else 0
            while len(in_flight) > keep:
                y, work = in_flight.pop(0)
                work.wait()
                x = x + y
            # 2. Compute this rank's partial output and launch its all-reduce without waiting.
            name = f"L{j // 2}.{'attn' if j % 2 == 0 else 'mlp'}"
            with comm.compute(name):
                y = self._run_module(j, x, cache)  # (B, T, C)
            in_flight.append((y, comm.all_reduce(y, async_op=True, name=f"AR {name}")))
        # 3. The last outputs join the stream before the final norm.
        for y, work in in_flight:
            work.wait()
            x = x + y
        if cache is not None:
            cache.length = start + T
        return self.head(self.ln_f(x))  # (B, T, vocab)

    def _parallel_layers(self, x: torch.Tensor, comm: Communicator, cache: KVCache | None) -> torch.Tensor:
        """The residual stream after every parallel block: one summed output, one all-reduce per layer."""
        for i, block in enumerate(self.blocks):
            with comm.compute(f"L{i}"):
                h = block.ln_1(x)  # (B, T, C): both modules read the same normed stream
                y = block.attn(h, cache, i) + block.mlp(h)  # (B, T, C): the rank's partial sum of both
            # The next layer reads x + y at once, so the all-reduce is waited on here, unhidden.
            work = comm.all_reduce(y, async_op=True, name=f"AR L{i}")
            work.wait()
            x = x + y
        return x
