"""A small decoder-only transformer (pre-norm GPT) whose per-layer structure is explicit.

``model.blocks`` is an ``nn.ModuleList`` of :class:`Block`; each block has ``ln_1``, ``attn``,
``ln_2`` and ``mlp`` sub-modules and computes ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``.
Chapters that regroup layers (Streaming DiLoCo's fragments) or rewire the residual stream
(Ladder Residual) use those names directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of :class:`GPT`. The defaults train in a few ms per step on one CPU thread."""

    vocab_size: int = 32  # matches the default MarkovSource
    seq_len: int = 64  # longest input; position embeddings are learned up to here
    d_model: int = 64  # residual width C
    n_layers: int = 4  # number of Blocks; Streaming DiLoCo assigns whole blocks to fragments
    n_heads: int = 4  # head size d_model / n_heads = 16
    mlp_ratio: int = 4  # hidden width of the MLP is mlp_ratio * d_model, as in GPT-2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads", "mlp_ratio"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; "
                "pick n_heads that divides d_model"
            )


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where token ``t`` sees tokens ``<= t``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        # (B, T, C) -> (B, n_heads, T, C / n_heads)
        q, k, v = (z.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, n_heads, T, C / n_heads)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    """Position-wise feed-forward: ``C -> mlp_ratio C -> C`` with a GELU."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """One pre-norm transformer layer: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token + position embedding, ``n_layers`` :class:`Block`, final LayerNorm, linear head.

    ``forward(tokens)`` maps a LongTensor ``(B, L)`` with ``L <= cfg.seq_len`` to logits
    ``(B, L, vocab_size)``. The head is not tied to the embedding, so every parameter belongs to
    exactly one named module (``tok_emb``, ``pos_emb``, ``blocks.i``, ``ln_f``, ``head``).
    """

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos_emb = nn.Embedding(cfg.seq_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2's N(0, 0.02) keeps the initial logits near zero, so the first loss is ~log V.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def n_params(self) -> int:
        """Number of trainable scalars."""
        return sum(p.numel() for p in self.parameters())

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token + position embedding: ``(B, L)`` LongTensor -> ``(B, L, d_model)``."""
        if tokens.ndim != 2:
            raise ValueError(f"tokens must have shape (B, L), got {tuple(tokens.shape)}")
        B, L = tokens.shape
        if L > self.cfg.seq_len:
            raise ValueError(f"sequence length {L} exceeds GPTConfig.seq_len={self.cfg.seq_len}")
        pos = torch.arange(L, device=tokens.device)  # (L,)
        return self.tok_emb(tokens) + self.pos_emb(pos)  # (B, L, C)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)  # (B, L, C)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))  # (B, L, vocab)
