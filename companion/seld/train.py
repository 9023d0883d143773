"""Training SELDnet: Adam, the SELD loss, early stopping on the SELD score, checkpoints.

A long run can be split over several sittings: with ``state_path`` :func:`fit` writes, after every
epoch, everything the next epoch depends on (weights, Adam's moments, the batch-order generator,
the history and the best weights so far) and, when that file exists, continues from it. Training
data are a function of the epoch only, so a resumed run takes the same steps as one that was never
interrupted, and ends with the same weights to the bit (checked by a test).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from companion.seld.data import SeldData
from companion.seld.features import FeatureScaler
from companion.seld.losses import DOA_WEIGHT, seld_loss
from companion.seld.metrics import evaluate
from companion.seld.model import SELDnet, SELDnetConfig


@dataclass
class History:
    """Per-epoch training loss and validation metrics; ``best_epoch`` is 0-based."""

    train_loss: list[float] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0
    #: why training ended: ``"patience"``, ``"epochs"`` (the limit) or ``"max_seconds"`` (the cap)
    stopped_by: str = ""
    #: one entry per sitting: ``{"first_epoch": e, ...}`` plus the caller's ``sitting`` details;
    #: a run that was never resumed has one, with ``first_epoch`` 0
    sittings: list[dict] = field(default_factory=list)

    @property
    def best(self) -> dict:
        return self.val[self.best_epoch]


@torch.no_grad()
def predict(model: SELDnet, data: SeldData, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Activity probabilities ``(N, T, K)`` and DOA vectors ``(N, T, K, 3)`` as NumPy arrays.

    Runs on the model's device; the features are moved there a batch at a time.
    """
    device = next(model.parameters()).device
    probs, doas = [], []
    for i in range(0, len(data), batch_size):
        p, d = model.predict(data.feats[i : i + batch_size].to(device))
        probs.append(p.cpu().numpy())
        doas.append(d.cpu().numpy())
    return np.concatenate(probs), np.concatenate(doas)


def evaluate_model(model: SELDnet, data: SeldData, *, threshold: float = 0.5) -> dict:
    """All metrics of :func:`companion.seld.metrics.evaluate` on a data set (scenes concatenated)."""
    prob, doa = predict(model, data)
    K = prob.shape[-1]
    ref_sed, ref_doa = data.flat_labels()
    return evaluate(prob.reshape(-1, K), doa.reshape(-1, K, 3), ref_sed, ref_doa, int(round(data.fps)), threshold=threshold)


def fit(
    model: SELDnet,
    train: SeldData | Callable[[int], SeldData],
    val: SeldData,
    *,
    epochs: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    doa_weight: float = DOA_WEIGHT,
    masked: bool = False,
    patience: int | None = None,
    seed: int = 0,
    max_seconds: float | None = None,
    progress: bool = True,
    state_path: Path | str | None = None,
    state_meta: dict | None = None,
    sitting: dict | None = None,
    device: str | torch.device = "cpu",
    earlier: History | None = None,
) -> History:
    """Train ``model`` in place and restore the weights of the epoch with the lowest SELD score.

    ``train`` is a data set, or a function ``epoch -> data set`` for fresh scenes every epoch.
    Training stops after ``patience`` epochs without improvement (``None``: never early) or
    after the first epoch of this call that ends past ``max_seconds`` of wall-clock time.
    ``state_path``: write the training state there after every epoch and, if the file exists,
    resume from it; ``state_meta`` (what defines the run: data, model, optimiser settings) is stored
    with it and must be equal on resuming, or a ``ValueError`` names what differs. The epoch limit,
    ``max_seconds`` and ``patience`` may change between sittings (they decide only when to stop, so a
    run resumed with a longer patience takes the steps an uninterrupted one with it would have); ``sitting`` (e.g. the commit and the date) is
    recorded in ``History.sittings``. ``device`` (``"cpu"``, ``"cuda"``, ...): where the model is
    moved and trained; the scenes are made on the CPU and moved a batch at a time. A run is resumed
    only on the device type it began on, since another device rounds differently.
    ``earlier``: the history of a finished run whose best weights ``model`` holds; training goes on
    from epoch ``len(earlier.train_loss)`` with a fresh optimiser (Adam's moments were not kept),
    the earlier curves and best epoch carried over, so patience counts from the earlier best.
    The paper: Adam with default settings, batch 16 (this function's default; the chapter's
    reference runs use 4, see :mod:`companion.seld.experiments`), ``doa_weight`` 50, unmasked MSE.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs} and {batch_size}")
    device = torch.device(device)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)  # batch order on the CPU: the same on every device
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history, best_state, start = History(), None, time.perf_counter()
    meta = dict(state_meta or {}) | dict(batch_size=batch_size, lr=lr, doa_weight=doa_weight, masked=masked,
                                          seed=seed, device=device.type)  # not patience: it only decides when to stop
    first, seconds_before = 0, 0.0
    if earlier is not None:
        if not earlier.train_loss or not 0 <= earlier.best_epoch < len(earlier.train_loss):
            raise ValueError(f"earlier must be a finished run's history, got {len(earlier.train_loss)} epochs "
                             f"and best epoch {earlier.best_epoch}")
        history = History(train_loss=list(earlier.train_loss), val=list(earlier.val), best_epoch=earlier.best_epoch,
                          seconds=earlier.seconds, sittings=list(earlier.sittings))
        first, seconds_before = len(earlier.train_loss), earlier.seconds
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if first >= epochs:
            raise ValueError(f"the earlier run has {first} epochs, not fewer than epochs={epochs}; raise the limit")
    if state_path is not None and Path(state_path).is_file():
        first, history, best_state, seconds_before = _resume(Path(state_path), meta, model, optimiser, generator)
        if history.stopped_by == "patience":
            raise ValueError(f"the run in {state_path} already ended by early stopping after epoch {first}; "
                             "nothing to resume (delete the file to train afresh)")
        if first >= epochs:
            raise ValueError(f"the run in {state_path} has done {first} epochs, not fewer than epochs={epochs}; "
                             f"raise the epoch limit above {first} to go on")
    history.sittings.append({"first_epoch": first, "patience": patience} | dict(sitting or {}))
    bar = tqdm(range(first, epochs), desc="epochs", disable=not progress)
    for epoch in bar:
        data = train(epoch) if callable(train) else train
        model.train()
        order = torch.randperm(len(data), generator=generator)
        losses = []
        for i in range(0, len(data), batch_size):
            idx = order[i : i + batch_size]
            sed_logits, doa = model(data.feats[idx].to(device))
            loss, _, _ = seld_loss(sed_logits, doa, data.sed[idx].to(device), data.doa[idx].to(device), doa_weight=doa_weight,
                                   masked=masked)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        history.train_loss.append(float(np.mean(losses)))
        history.val.append(evaluate_model(model, val))
        score = history.val[-1]["seld_score"]
        if history.best_epoch < 0 or score < history.best["seld_score"]:
            history.best_epoch = epoch
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", seld=f"{score:.3f}")
        history.stopped_by = (
            "patience" if patience is not None and epoch - history.best_epoch >= patience
            else "epochs" if epoch + 1 == epochs
            else "max_seconds" if max_seconds is not None and time.perf_counter() - start > max_seconds
            else ""
        )
        history.seconds = seconds_before + time.perf_counter() - start
        if state_path is not None:
            _save_state(Path(state_path), meta, epoch + 1, model, optimiser, generator, history, best_state)
        if history.stopped_by:
            break
    model.load_state_dict(best_state)  # copies into the model's parameters, on its device
    return history


def _save_state(path: Path, meta, next_epoch, model, optimiser, generator, history: History, best_state) -> None:
    plain = asdict(history)  # NumPy scalars become Python numbers: the file loads with weights_only=True
    plain["val"] = [{k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()} for row in plain["val"]]
    blob = {"meta": meta, "next_epoch": next_epoch, "model": model.state_dict(), "optimiser": optimiser.state_dict(),
            "generator": generator.get_state(), "history": plain, "best_state": best_state}
    partial = path.with_name(path.name + ".partial")
    torch.save(blob, partial)
    partial.replace(path)  # atomic: an interrupted write leaves the previous epoch's state intact


def _resume(path: Path, meta: dict, model, optimiser, generator):
    blob = torch.load(path, map_location="cpu", weights_only=True)
    # states written before patience could change between sittings hold it in their meta
    blob["meta"].pop("patience", None)
    if isinstance(blob["meta"].get("settings"), dict):
        blob["meta"]["settings"].pop("patience", None)
    differs = {k: (blob["meta"].get(k), meta.get(k)) for k in set(blob["meta"]) | set(meta) if blob["meta"].get(k) != meta.get(k)}
    if differs:
        detail = "; ".join(f"{k}: saved {a!r}, now {b!r}" for k, (a, b) in sorted(differs.items()))
        raise ValueError(f"cannot resume from {path}: the run differs ({detail}); use the saved run's options or delete the file")
    model.load_state_dict(blob["model"])
    optimiser.load_state_dict(blob["optimiser"])
    generator.set_state(blob["generator"])
    history = History(**blob["history"])
    return blob["next_epoch"], history, blob["best_state"], history.seconds


def save_checkpoint(path, model: SELDnet, scaler: FeatureScaler, meta: dict | None = None) -> None:
    """Write the model's config and weights, the feature scaler and ``meta`` to ``path``."""
    torch.save(
        {"config": model.config_dict(), "state_dict": model.state_dict(), "scaler": scaler.state_dict(), "meta": meta or {}},
        Path(path),
    )


def load_checkpoint(path) -> tuple[SELDnet, FeatureScaler, dict]:
    """Read a checkpoint written by :func:`save_checkpoint`; the model is in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no SELDnet checkpoint at {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    config = dict(blob["config"])
    config["freq_pools"] = tuple(config["freq_pools"])
    model = SELDnet(SELDnetConfig(**config))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return model, FeatureScaler.from_state_dict(blob["scaler"]), blob["meta"]
