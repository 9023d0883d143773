"""DiLoCo and Streaming DiLoCo as a context manager around an unchanged inner training loop.

Inside ``with StreamingDiLoCo(model, inner_opt, reducer, sync_every=H, ...)``, every
``inner_opt.step()`` counts one inner step; a post-step hook runs the fragment schedule:

1. *launch* (``prepare_sync``): outer gradient ``delta_p = theta_global_p - theta_local_p`` into a
   private buffer, sent to be summed over workers (quantised if ``quantize_bits``);
2. ``tau`` inner steps later, *apply* (``perform_sync``): wait for the sum, average it, one step of
   the fragment's outer optimiser (SGD, Nesterov) on its global copy, then merge
   ``theta_local_p <- alpha theta_local_p + (1 - alpha) theta_global_p``.

With one fragment, ``tau = 0`` and ``alpha = 0`` this is DiLoCo (Douillard et al., 2023);
fragments, overlap and quantisation are the three additions of Streaming DiLoCo (2025).

The split of a sync into ``prepare_sync`` and ``perform_sync`` follows torchft, the PyTorch
fault-tolerance library (github.com/pytorch/torchft, ``torchft/local_sgd.py``), whose
``_StreamingDiLoCoFragment`` has methods of the same names: one computes the pseudo-gradient and
starts its all-reduce without waiting, the other waits, steps the outer optimiser and merges with
``fragment_update_alpha`` (our ``alpha``). torchft is cited in ``book/references.bib`` as
``torchft``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from companion.diloco.fragments import Fragment, assign_, flatten, make_fragments
from companion.diloco.ledger import ByteLedger
from companion.diloco.schedule import FragmentSchedule


class _FragmentSync:
    """Global copy, outer optimiser and in-flight sum of one fragment, in the order of their use."""

    def __init__(self, fragment: Fragment, reducer, *, outer_lr: float, outer_momentum: float,
                 nesterov: bool, alpha: float, bits: int | None, ledger: ByteLedger, fmt: str = "int"):
        self.fragment, self.reducer, self.alpha, self.bits, self.ledger = fragment, reducer, alpha, bits, ledger
        self.fmt = fmt
        self.global_flat = flatten(fragment.params)  # theta_global_p, fp32, a leaf tensor of its own
        self.outer = torch.optim.SGD(
            [self.global_flat], lr=outer_lr, momentum=outer_momentum, nesterov=nesterov and outer_momentum > 0
        )
        self.pending = None

    def prepare_sync(self, step: int) -> None:
        """Compute ``delta_p = global - local`` now and start summing it over the workers."""
        delta = self.global_flat - flatten(self.fragment.params)  # "old minus new": a descent direction
        self.pending = self.reducer.launch(delta, bits=self.bits, fmt=self.fmt,
                                           name=f"outer grad frag {self.fragment.index}")
        self.ledger.record(step, self.fragment.index, self.pending.nbytes)

    def perform_sync(self) -> None:
        """Wait for the sum, take one outer step on the global copy, merge it into the live parameters."""
        total = self.pending.wait()
        self.pending = None
        self.global_flat.grad = total / self.reducer.world_size  # mean outer gradient, fp32
        self.outer.step()
        self.global_flat.grad = None
        local = flatten(self.fragment.params)
        assign_(self.fragment.params, torch.lerp(self.global_flat, local, self.alpha))  # alpha local + (1-alpha) global


class StreamingDiLoCo:
    """DiLoCo / Streaming DiLoCo hooked onto an inner optimiser.

    Parameters
    ----------
    model : nn.Module
        Has ``model.blocks`` (an ``nn.ModuleList``) to cut into fragments. Every worker must hold
        the same initial parameters (broadcast them from rank 0 first).
    inner_optimizer : torch.optim.Optimizer
        Steps ``model``'s parameters (AdamW in the papers); its state is kept across syncs.
    reducer : LocalReducer or LinkReducer
        Sums outer gradients over workers (:mod:`companion.diloco.reducers`).
    sync_every : int
        ``H``, inner steps between two syncs of the same fragment.
    n_fragments : int
        ``P`` (Streaming DiLoCo §2.2); must divide ``H`` and the number of blocks.
    fragment_sync_delay : int
        ``tau``, inner steps a sync overlaps (§2.3); ``0 <= tau < H / P``.
    fragment_update_alpha : float
        ``alpha`` in ``[0, 1]``, weight of the local parameters in the merge (§2.3, Alg. 2 l. 12).
    pattern : {"strided", "sequential"}
        Layer-to-fragment assignment (§2.2; strided is the paper's default).
    outer_lr, outer_momentum, nesterov
        Outer SGD (DiLoCo: 0.7, 0.9, Nesterov).
    quantize_bits : int or None
        Bits per value of the sent outer gradients (§2.4: 4); ``None`` sends fp32.
    quantize_format : {"int", "e3m0"}
        Number format of the codes (:data:`companion.comm.quantize.FORMATS`): blockwise absmax
        integers, or the paper's E3M0 floats (§2.4; 4 bits).
    ledger : ByteLedger or None
        Where to count the bytes sent; a fresh one is made if ``None`` (``self.ledger``).
    """

    def __init__(self, model: nn.Module, inner_optimizer: torch.optim.Optimizer, reducer, *, sync_every: int,
                 n_fragments: int = 1, fragment_sync_delay: int = 0, fragment_update_alpha: float = 0.0,
                 pattern: str = "strided", outer_lr: float = 0.7, outer_momentum: float = 0.9,
                 nesterov: bool = True, quantize_bits: int | None = None, ledger: ByteLedger | None = None,
                 quantize_format: str = "int"):
        if not 0.0 <= fragment_update_alpha <= 1.0:
            raise ValueError(
                f"fragment_update_alpha={fragment_update_alpha!r} must be in [0, 1] "
                "(0: replace by the global fragment, 1: keep the local one)"
            )
        if not outer_lr > 0 or not 0 <= outer_momentum < 1:
            raise ValueError(f"need outer_lr > 0 and 0 <= outer_momentum < 1, got {outer_lr}, {outer_momentum}")
        self.schedule = FragmentSchedule(sync_every, n_fragments, fragment_sync_delay)
        self.model, self.inner_optimizer = model, inner_optimizer
        self.ledger = ledger if ledger is not None else ByteLedger()
        self.fragments = make_fragments(model, n_fragments, pattern=pattern)
        self._syncs = [
            _FragmentSync(f, reducer, outer_lr=outer_lr, outer_momentum=outer_momentum, nesterov=nesterov,
                          alpha=float(fragment_update_alpha), bits=quantize_bits, ledger=self.ledger,
                          fmt=quantize_format)
            for f in self.fragments
        ]
        self.step = 0
        self._handle = None

    def __enter__(self) -> "StreamingDiLoCo":
        self._handle = self.inner_optimizer.register_step_post_hook(self._after_inner_step)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._handle.remove()
        if exc_type is None:
            self.finish()
        return False  # propagate exceptions

    def _after_inner_step(self, optimizer, args, kwargs) -> None:
        # The schedule is a function of the shared step counter only, so every worker launches
        # and applies the same fragment at the same step: collectives never mismatch.
        self.step += 1
        launch = self.schedule.launch_at(self.step)
        if launch is not None:
            self._syncs[launch].prepare_sync(self.step)
        apply = self.schedule.apply_at(self.step)
        if apply is not None:
            self._syncs[apply].perform_sync()

    def finish(self) -> None:
        """Apply the sync still in flight (launched in the last ``tau`` steps), if any."""
        for sync in self._syncs:
            if sync.pending is not None:
                sync.perform_sync()

    def outer_state_dict(self) -> dict[str, torch.Tensor]:
        """``{parameter name: global (outer) value}``, the parameters the paper evaluates (Table 3)."""
        out = {}
        for sync in self._syncs:
            offset = 0
            for name, p in zip(sync.fragment.names, sync.fragment.params):
                out[name] = sync.global_flat[offset : offset + p.numel()].view_as(p).clone()
                offset += p.numel()
        return out
