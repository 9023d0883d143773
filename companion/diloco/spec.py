"""One experiment of the chapter, described once and run either on real workers or in one process."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from companion import lm
from companion.comm.quantize import FORMATS
from companion.lm import ddp
from companion.diloco.schedule import FragmentSchedule

METHODS = ("data_parallel", "diloco")


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines a training run on the toy task.

    ``method="diloco"`` covers the whole DiLoCo family: DiLoCo is ``n_fragments=1, tau=0,
    alpha=0, bits=None``; Streaming DiLoCo sets ``n_fragments > 1`` and optionally the overlap
    (``tau``, ``alpha``) and quantisation (``bits``). ``data_parallel`` all-reduces gradients at
    every step, through PyTorch's DDP (``bucket_cap_mb``: :data:`companion.lm.ddp.BUCKET_CAP_MB`).
    Every worker trains on batches of ``batch_size`` sequences, so at equal steps all
    methods see the same number of tokens.
    """

    method: str = "diloco"
    steps: int = 240  # inner steps per worker
    H: int = 40  # inner steps between two syncs of one fragment
    n_fragments: int = 1  # P
    tau: int = 0  # overlapped inner steps
    alpha: float = 0.0  # merge weight of the local fragment
    bits: int | None = None  # bits per sent value (None: fp32)
    quant_format: str = "int"  # codes: "int" (blockwise absmax) or "e3m0" (the paper's, 4 bits)
    pattern: str = "strided"
    outer_lr: float = 0.7  # DiLoCo's outer Nesterov SGD
    outer_momentum: float = 0.9
    inner_lr: float = 3e-3  # AdamW; larger than the paper's 4e-4 because the model is tiny
    weight_decay: float = 0.1
    batch_size: int = 16
    seq_len: int = 32
    vocab_size: int = 32
    order: int = 2
    d_model: int = 32
    n_layers: int = 4
    n_heads: int = 4
    seed: int = 0  # initial weights and data streams
    source_seed: int = 0  # the language itself
    eval_every: int = 0  # 0: evaluate only at the end
    eval_seqs: int = 128
    link_latency_s: float | None = None  # modelled link (None: bare gloo)
    link_gbps: float | None = None
    bucket_cap_mb: float = ddp.BUCKET_CAP_MB  # data-parallel: DDP's bucket size (several buckets)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.method == "diloco":
            FragmentSchedule(self.H, self.n_fragments, self.tau)  # validates H, P, tau
            if self.n_layers % self.n_fragments:
                raise ValueError(f"n_layers={self.n_layers} is not divisible by n_fragments={self.n_fragments}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha={self.alpha!r} must be in [0, 1]")
        if self.quant_format not in FORMATS or (self.quant_format == "e3m0" and self.bits != 4):
            raise ValueError(f"quant_format={self.quant_format!r} with bits={self.bits!r}: use 'int' "
                             "(any bits), or 'e3m0' with bits=4 (companion.comm.quantize.FORMATS)")
        if (self.link_gbps is None) != (self.link_latency_s is None):
            raise ValueError("give both link_gbps and link_latency_s, or neither")
        ddp.check_bucket_cap_mb(self.bucket_cap_mb)
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")

    def with_(self, **changes) -> "RunSpec":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @property
    def label(self) -> str:
        if self.method == "data_parallel":
            return "data-parallel"
        if self.n_fragments == 1 and self.tau == 0 and self.bits is None:
            return f"DiLoCo H={self.H}"
        parts = [f"Streaming P={self.n_fragments}"]
        if self.tau:
            parts.append(f"tau={self.tau} alpha={self.alpha:g}")
        if self.bits:
            parts.append("4-bit E3M0" if self.quant_format == "e3m0" else f"{self.bits}-bit")
        return ", ".join(parts)

    # ---- the pieces every runner builds the same way -------------------------------------
    def source(self) -> lm.MarkovSource:
        return lm.MarkovSource(self.vocab_size, self.order, seed=self.source_seed)

    def model_config(self) -> lm.GPTConfig:
        return lm.GPTConfig(vocab_size=self.vocab_size, seq_len=self.seq_len, d_model=self.d_model,
                            n_layers=self.n_layers, n_heads=self.n_heads)

    def initial_model(self) -> lm.GPT:
        """The seeded initial model, built on the CPU (move it to ``comm.device()`` afterwards)."""
        torch.manual_seed(self.seed)
        with torch.device("cpu"):  # the CPU generator, whatever the default device
            return lm.GPT(self.model_config())

    def inner_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=self.inner_lr, betas=(0.9, 0.95),
                                 weight_decay=self.weight_decay)

    def eval_steps(self) -> list[int]:
        """Steps after which the outer parameters are evaluated (always including the last)."""
        steps = list(range(self.eval_every, self.steps + 1, self.eval_every)) if self.eval_every else []
        return steps if steps and steps[-1] == self.steps else steps + [self.steps]
