"""Train standard, Ladder and parallel-block decoders on the toy language of :mod:`companion.lm`, and convert one.

Training runs on one process: the Ladder architecture is the same function at TP = 1 and TP = p
(the tests of :mod:`companion.ladder.sharding` check it), so its quality does not depend on p.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from companion import lm
from companion.ladder.model import Decoder


@dataclass
class TrainingRun:
    """Loss curve of one model: per-step training loss and periodic held-out loss (nats/token)."""

    ladder_layers: int
    architecture: str = ""  # Decoder.architecture: "standard", "ladder", "hybrid" or "parallel"
    train_loss: list[float] = field(default_factory=list)  # one per step
    eval_steps: list[int] = field(default_factory=list)  # steps after which eval_loss was taken
    eval_loss: list[float] = field(default_factory=list)
    model: Decoder | None = None  # the trained model, when the caller asked to keep it

    @property
    def final_eval_loss(self) -> float:
        """The held-out loss after the last step."""
        return self.eval_loss[-1]


def train(
    model: Decoder,
    src: lm.MarkovSource,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 3e-3,
    seed: int = 0,
    eval_every: int = 50,
    eval_seqs: int = 64,
    eval_seed: int = 10_007,
    run: TrainingRun | None = None,
) -> TrainingRun:
    """Train ``model`` in place with AdamW on ``steps`` batches of ``src``; returns the loss curve.

    Batches are ``(batch_size, cfg.seq_len + 1)`` so the model sees ``seq_len`` inputs. Held-out
    loss uses ``eval_seqs`` sequences drawn with ``eval_seed`` (the same for every model by
    default, so curves are comparable). Passing ``run`` appends to an existing curve.
    """
    if steps < 1 or eval_every < 1:
        raise ValueError(f"steps and eval_every must be >= 1, got {steps}, {eval_every}")
    if model.tp_size != 1:
        raise ValueError(f"train a full model (tp_size=1), got tp_size={model.tp_size}")
    run = run if run is not None else TrainingRun(model.ladder_layers, model.architecture)
    seq_len = model.cfg.seq_len
    batches = lm.token_batches(src, batch_size, seq_len + 1, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    done = run.eval_steps[-1] if run.eval_steps else 0
    model.train()
    for step in range(1, steps + 1):
        loss = lm.lm_loss(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        run.train_loss.append(loss.item())
        if step % eval_every == 0 or step == steps:
            model.eval()
            run.eval_steps.append(done + step)
            run.eval_loss.append(lm.evaluate(model, src, eval_seqs, seq_len + 1, seed=eval_seed))
            model.train()
    model.eval()
    return run


#: The architectures :func:`compare_architectures` can train, as the paper compares them.
ARCHITECTURES = ("standard", "ladder", "parallel")


def compare_architectures(
    cfg: lm.GPTConfig,
    src: lm.MarkovSource,
    *,
    steps: int,
    seed: int = 0,
    architectures: tuple[str, ...] = ("standard", "ladder"),
    **train_kwargs,
) -> dict[str, TrainingRun]:
    """Train each of ``architectures`` (names from :data:`ARCHITECTURES`) from the same initial
    weights and data stream, with the same budget.

    The three forms have the same parameters, so one seed gives each the same initial weights
    (a parallel block leaves ``ln_2`` unused). Returns ``{name: run}``; each run keeps its
    trained model in ``run.model``.
    """
    unknown = [a for a in architectures if a not in ARCHITECTURES]
    if unknown or not architectures:
        raise ValueError(f"architectures must be names from {ARCHITECTURES}, got {architectures!r}")
    runs = {}
    for name in architectures:
        torch.manual_seed(seed)
        model = Decoder(cfg, ladder_layers=cfg.n_layers if name == "ladder" else 0,
                        parallel=name == "parallel")
        runs[name] = train(model, src, steps=steps, seed=seed, **train_kwargs)
        runs[name].model = model
    return runs


@dataclass(frozen=True)
class ConversionResult:
    """Held-out losses of the conversion experiment (nats/token)."""

    standard: float  # the trained standard model
    zero_shot: float  # its upper half switched to Ladder, no retraining
    retrained: float  # after the short retraining of the converted model
    standard_continued: float | None  # the standard model trained for the same extra steps (control)
    retrain_run: TrainingRun  # the converted model's curve during retraining


def conversion_experiment(
    standard: Decoder,
    src: lm.MarkovSource,
    *,
    retrain_steps: int,
    ladder_layers: int | None = None,
    seed: int = 1,
    retrain_lr: float = 1e-3,
    eval_seqs: int = 64,
    eval_seed: int = 10_007,
    control: bool = True,
    **train_kwargs,
) -> ConversionResult:
    """Convert a trained standard model's upper ``ladder_layers`` (default: half) to Ladder, retrain.

    ``standard`` is left unchanged. The retraining draws a fresh data stream (``seed``) with a
    fresh optimizer at ``retrain_lr``, as a fine-tuning would; the control continues a copy of the
    standard model the same way, so both end with the same number of steps (``control=False``
    skips it and leaves ``standard_continued`` as ``None``).
    """
    if standard.ladder_layers != 0 or standard.tp_size != 1:
        raise ValueError("conversion starts from a full standard model (ladder_layers=0, tp_size=1)")
    k = standard.cfg.n_layers // 2 if ladder_layers is None else ladder_layers
    n_tokens = standard.cfg.seq_len + 1
    before = lm.evaluate(standard, src, eval_seqs, n_tokens, seed=eval_seed)
    converted = standard.with_ladder_layers(k)
    zero_shot = lm.evaluate(converted, src, eval_seqs, n_tokens, seed=eval_seed)
    kwargs = dict(steps=retrain_steps, seed=seed, lr=retrain_lr, eval_seqs=eval_seqs, eval_seed=eval_seed)
    kwargs.update(train_kwargs)
    retrain_run = TrainingRun(k, eval_steps=[0], eval_loss=[zero_shot])
    train(converted, src, run=retrain_run, **kwargs)
    continued = None
    if control:
        continued = train(standard.with_ladder_layers(0), src, **kwargs).final_eval_loss  # on a copy
    return ConversionResult(
        standard=before,
        zero_shot=zero_shot,
        retrained=retrain_run.final_eval_loss,
        standard_continued=continued,
        retrain_run=retrain_run,
    )
