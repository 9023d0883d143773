"""One experiment of the chapter, described once and run either on real workers or in one process."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from companion import lm
from companion.comm.cost_model import Link
from companion.comm.quantize import FORMATS, SUPPORTED_BITS
from companion.lm import ddp
from companion.lm.source import MAX_CONTEXTS
from companion.diloco.fragments import PATTERNS
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

    Every field is checked here, in the process that builds the spec, so that a bad value raises
    a ``ValueError`` naming the value and the fix instead of a ``WorkerError`` from inside a
    worker process.
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
        if not _is_int(self.steps) or self.steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {self.steps!r}")
        if self.method == "diloco":
            FragmentSchedule(self.H, self.n_fragments, self.tau)  # validates H, P, tau
            if self.n_layers % self.n_fragments:
                raise ValueError(f"n_layers={self.n_layers} is not divisible by n_fragments={self.n_fragments}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha={self.alpha!r} must be in [0, 1]")
        self._check_sync()
        self._check_training()
        if (self.link_gbps is None) != (self.link_latency_s is None):
            raise ValueError("give both link_gbps and link_latency_s, or neither")
        if self.link_gbps is not None:
            try:
                Link.from_gbps(self.link_latency_s, self.link_gbps)  # gbps > 0, latency finite >= 0
            except ValueError as err:
                raise ValueError(
                    f"link_gbps={self.link_gbps!r}, link_latency_s={self.link_latency_s!r}: {err} "
                    "(or leave both None for bare gloo)"
                ) from None
        ddp.check_bucket_cap_mb(self.bucket_cap_mb)
        if not _is_int(self.eval_every) or self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be an int >= 0 (0: evaluate only at the end)")

    def _check_sync(self) -> None:
        """The fields the outer sync reads: payload format, fragment pattern, outer optimiser."""
        if self.bits is not None and (not _is_int(self.bits) or self.bits not in SUPPORTED_BITS):
            raise ValueError(
                f"bits={self.bits!r} is not a payload format: use None (fp32) or one of "
                f"{SUPPORTED_BITS} bits per value (companion.comm.quantize)"
            )
        if self.quant_format not in FORMATS or (self.quant_format == "e3m0" and self.bits != 4):
            raise ValueError(f"quant_format={self.quant_format!r} with bits={self.bits!r}: use 'int' "
                             "(any supported bits), or 'e3m0' with bits=4 (companion.comm.quantize.FORMATS)")
        if self.pattern not in PATTERNS:
            raise ValueError(
                f"pattern={self.pattern!r} is not a fragment pattern: use one of {PATTERNS} "
                "('strided' is the paper's default)"
            )
        if not _is_real(self.outer_lr) or not self.outer_lr > 0:
            raise ValueError(
                f"outer_lr={self.outer_lr!r} must be a finite number > 0 (DiLoCo's is 0.7; "
                "1 with outer_momentum=0 is plain parameter averaging)"
            )
        if not _is_real(self.outer_momentum) or not 0 <= self.outer_momentum < 1:
            raise ValueError(
                f"outer_momentum={self.outer_momentum!r} must be in [0, 1) (DiLoCo's is 0.9; 0 turns "
                "Nesterov off)"
            )

    def _check_training(self) -> None:
        """The fields the inner optimiser, the data and the model read."""
        if not _is_real(self.inner_lr) or not self.inner_lr > 0:
            raise ValueError(f"inner_lr={self.inner_lr!r} must be a finite number > 0 (AdamW's learning rate)")
        if not _is_real(self.weight_decay) or self.weight_decay < 0:
            raise ValueError(f"weight_decay={self.weight_decay!r} must be a finite number >= 0")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size!r} must be an int >= 1 (sequences per worker per step)")
        if not _is_int(self.seq_len) or self.seq_len < 2:
            raise ValueError(f"seq_len={self.seq_len!r} must be an int >= 2 (one token to predict from another)")
        if not _is_int(self.eval_seqs) or self.eval_seqs < 1:
            raise ValueError(f"eval_seqs={self.eval_seqs!r} must be an int >= 1 (held-out sequences)")
        if not _is_int(self.vocab_size) or self.vocab_size < 2:
            raise ValueError(f"vocab_size={self.vocab_size!r} must be an int >= 2")
        if not _is_int(self.order) or self.order < 1:
            raise ValueError(f"order={self.order!r} must be an int >= 1 (tokens of context of the source)")
        if self.vocab_size**self.order > MAX_CONTEXTS:
            raise ValueError(
                f"vocab_size**order = {self.vocab_size}**{self.order} exceeds the source's "
                f"{MAX_CONTEXTS} contexts: lower the order or the vocabulary"
            )
        for name in ("seed", "source_seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name}={value!r} must be an int >= 0 (numpy seeds cannot be negative)")
        self.model_config()  # GPTConfig checks the sizes and that n_heads divides d_model

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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
