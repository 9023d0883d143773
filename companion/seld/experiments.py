"""The chapter's experiments as one command each.

Train a reference model on fresh synthetic scenes every epoch and write its checkpoint plus a
JSON record of how it was produced::

    python -m companion.seld.experiments train --conditions ov1-anechoic --out book/seld/assets/seldnet_ov1
    python -m companion.seld.experiments train --conditions ov1-anechoic,ov2-anechoic,ov3-anechoic,ov1-reverberant,ov2-reverberant,ov3-reverberant --out book/seld/assets/seldnet_mixed
    COMPANION_SCALE=paper python -m companion.seld.experiments train --conditions ov1-anechoic --out runs/paper_ov1

The default scale trains the paper's layout at half its widths on fresh scenes every epoch, in
batches of 4, until the validation SELD score has not improved for ``DEFAULT_PATIENCE`` epochs
(``--patience``), with a safety limit of ``DEFAULT_EPOCH_LIMIT`` epochs (``--epochs``) and no
wall-clock cap (``--max-seconds`` caps one sitting). ``seldnet_ov1`` was made by the first command
above, when the limits were 200 epochs and 3600 s; early stopping ended it well inside both, so the
command makes it today. The three multi-condition networks, ``seldnet_mixed`` (the second command)
and ``seldnet_mixed_seed1``/``_seed2`` (with ``--seed 1``/``--seed 2``), were made in two sittings:

1. the second command under the earlier limits, which stopped each at the 200-epoch limit, still
   improving (``--epochs 200`` gives that sitting today);
2. ``--init-from <that run> --patience 30 --out <the same name>``: training goes on at epoch 201
   from the first sitting's best weights and scaler, with a fresh Adam (the first sitting had not
   kept its moments), until early stopping. Patience 30, not the default 15: with 15, seed 0's
   continuation stopped at epoch 211 without beating its epoch-196 score, inside the fresh
   optimiser's transient (``book/seld/results/seldnet_mixed_patience15.json``). It was chosen after
   seeing that stop.

The record's ``sittings`` and ``initialised_from`` say which. The one command without ``--epochs``
(a single sitting with the default patience and one Adam throughout) trains a nearby network, not
the committed one. Since every epoch draws fresh scenes, a network cannot overfit them: validation
stops improving only when the network has learnt what its size and a fixed learning rate allow,
which took these runs 400 to 500 epochs. The seed changes the initial weights and the batch order,
not the scenes. Each JSON record gives the epochs run, the best (0-based) epoch and the seconds. A
run that early stopping ended has ``epochs_run == best_epoch + 1 + patience``, one that the epoch
limit ended has ``epochs_run == settings["epochs"]``; both are reproducible to the epoch on one
machine, while one that a wall-clock cap ended depends on the machine's speed. Across machines
float32 rounding differs: rerun on another 2-core machine of the same kind, the seed-0 mixture's
training loss matched the committed record's to 4e-8 (relative) in the first epoch and drifted to
2e-3 by the twelfth, so another machine follows a nearby trajectory, not the same one; the spread
over seeds says how much that can move the results. ``seldnet_ov1_relphase`` and
``seldnet_mixed_relphase`` are the relative-phase ablations, from an earlier version of the chapter
(``--phase relative --max-seconds 1620``, no patience). ``COMPANION_SCALE=paper`` trains the
paper-sized network longer on more scenes, with patience 30; ``--device cuda`` trains on a GPU.

A run writes ``<out>.state.pt`` after every epoch; ``--resume`` continues an unfinished run from
it (after a wall-clock cap or a lost session) and ends with the weights an uninterrupted run would
have. The record's ``command`` holds the options that define the run (not ``--resume`` or
``--max-seconds``); its ``sittings`` list each sitting's first epoch, command, commit and date, and
``stopped_by`` says what ended the run (``patience``, ``epochs`` or ``max_seconds``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import torch

from companion.scale import current, pick
from companion.seeding import seed_everything
from companion.seld.data import SeldData, scenes_to_data
from companion.seld.features import FeatureScaler
from companion.seld.model import SELDnet, SELDnetConfig
from companion.seld.pra_room import TEST_ROOMS, TRAIN_ROOMS
from companion.seld.scenes import SceneConfig, make_scenes
from companion.seld.train import fit, save_checkpoint

#: Where the committed checkpoints and result records live.
ASSETS = Path(__file__).resolve().parents[2] / "book" / "seld" / "assets"

VAL_SEED = 1  # validation scenes; training epochs use TRAIN_SEED + epoch; notebooks test on other seeds
TRAIN_SEED = 10_000

#: Epochs without a better validation SELD score after which a default-scale run stops (early stopping).
DEFAULT_PATIENCE = 15

#: The most epochs a default-scale run may take: far beyond where early stopping has ended any run
#: of this chapter, so that a run which reaches it is flagged (``stopped_by == "epochs"``).
DEFAULT_EPOCH_LIMIT = 1000

#: The reference network of the committed checkpoints: the paper's layout at half its widths.
SMALL = SELDnetConfig(conv_filters=32, rnn_hidden=64, fc_hidden=64)


def asset(name: str) -> Path:
    """Path of a committed file of the chapter, e.g. ``asset("seldnet_ov1.pt")``; raises if missing."""
    path = ASSETS / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; produce it with 'python -m companion.seld.experiments train ...'")
    return path


#: The rooms a condition may name: ``reverberant`` is the committed checkpoints' ShoeboxRoom,
#: ``trainrooms`` and ``testrooms`` the disjoint pyroomacoustics sets of :mod:`companion.seld.pra_room`.
ROOM_CONDITIONS = {"anechoic": None, "reverberant": None, "trainrooms": TRAIN_ROOMS, "testrooms": TEST_ROOMS}


def scene_config(condition: str, base: SceneConfig = SceneConfig()) -> SceneConfig:
    """``'ov2-reverberant'`` -> the scene config of that condition (rooms: ``ROOM_CONDITIONS``)."""
    hint = f"like 'ov1-anechoic' or 'ov3-reverberant', with a room in {sorted(ROOM_CONDITIONS)}"
    try:
        ov, room = condition.split("-")
        overlap = int(ov.removeprefix("ov"))
    except ValueError:
        raise ValueError(f"condition {condition!r} is not {hint}") from None
    if room not in ROOM_CONDITIONS or not ov.startswith("ov"):
        raise ValueError(f"condition {condition!r} is not {hint}")
    config = replace(base, overlap=overlap, reverberant=room != "anechoic")
    return replace(config, room=ROOM_CONDITIONS[room]) if ROOM_CONDITIONS[room] else config


def mixed_data(conditions, n_scenes: int, seed: int, scaler: FeatureScaler | None, *, phase: str = "absolute") -> tuple[SeldData, FeatureScaler]:
    """``n_scenes`` scenes split evenly over ``conditions``, concatenated; scaler as in ``make_data``."""
    parts = []
    for i, condition in enumerate(conditions):
        n = n_scenes // len(conditions) + (i < n_scenes % len(conditions))
        parts.append(scenes_to_data(make_scenes(n, scene_config(condition), seed * 100 + i), phase=phase))
    data = SeldData(
        torch.cat([p.feats for p in parts]), torch.cat([p.sed for p in parts]), torch.cat([p.doa for p in parts]), parts[0].fps
    )
    if scaler is None:
        scaler = FeatureScaler().fit(data.feats)
    data.feats = scaler.transform(data.feats)
    return data, scaler


def stop_reason(record: dict) -> str:
    """What ended the training run of a JSON ``record``: ``"patience"``, ``"epochs"`` or ``"max_seconds"``.

    Records written since resumable runs carry ``stopped_by``; for older ones the reason follows
    from the counts: early stopping leaves ``epochs_run == best_epoch + 1 + patience``, the epoch
    limit ``epochs_run == settings["epochs"]``, and anything else was the wall-clock cap.
    """
    if record.get("stopped_by"):
        return record["stopped_by"]
    settings, run = record["settings"], record["epochs_run"]
    if settings.get("patience") is not None and run == record["best_epoch"] + 1 + settings["patience"]:
        return "patience"
    if run == settings["epochs"]:
        return "epochs"
    return "max_seconds"


def _earlier_run(path: Path, defining: dict):
    """The model, scaler, :class:`~companion.seld.train.History` and provenance of a finished run."""
    from companion.seld.train import History, load_checkpoint

    path = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    record_path = path.with_name(path.name + ".json")
    if not record_path.is_file():
        raise FileNotFoundError(f"--init-from {path}: no record {record_path} beside the checkpoint")
    record = json.loads(record_path.read_text())
    saved = dict(conditions=record["conditions"], phase=record["phase"], scale=record["scale"], threads=record["threads"],
                 model_config=record["model_config"], masked_mse=record["masked_mse"], seed=record["seed"],
                 settings={k: v for k, v in record["settings"].items() if k not in ("epochs", "max_seconds", "patience")})
    now = json.loads(json.dumps(defining))  # tuples as lists, as in the record
    differs = sorted(k for k in now if saved[k] != now[k])
    if differs:
        detail = "; ".join(f"{k}: earlier {saved[k]!r}, now {now[k]!r}" for k in differs)
        raise ValueError(f"--init-from {path}: the earlier run differs ({detail}); use its options")
    if stop_reason(record) == "max_seconds":
        raise ValueError(f"--init-from {path}: that run was cut by a wall-clock cap, not finished; resume it instead")
    model, scaler, _ = load_checkpoint(path.with_name(path.name + ".pt"))
    first_sitting = {"first_epoch": 0, "patience": record["settings"].get("patience"), "command": record["command"], "git_commit": record["git_commit"],
                     "date_utc": record["date_utc"], "max_seconds": record["settings"].get("max_seconds"),
                     "device": record.get("device", "cpu")}
    earlier = History(train_loss=record["train_loss"], val=record["val"], best_epoch=record["best_epoch"],
                      seconds=record["seconds"], sittings=record.get("sittings") or [first_sitting])
    provenance = {"record": record_path.name, "git_commit": record["git_commit"], "epochs_run": record["epochs_run"],
                  "best_epoch": record["best_epoch"], "stopped_by": stop_reason(record),
                  "note": "the best weights and the scaler of that run; a fresh Adam from the next epoch"}
    return model, scaler, earlier, provenance


def run_options(argv: list[str]) -> list[str]:
    """The command-line options that define a run: ``argv`` without those of one sitting.

    ``--resume`` and ``--max-seconds`` (a wall-clock cap of one sitting; each sitting's cap is in
    the record's ``sittings``) do not change the model a finished run ends with.
    """
    kept, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--resume" or a.startswith("--max-seconds="):
            pass
        elif a == "--max-seconds":
            skip = True
        else:
            kept.append(a)
    return kept


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_reference(conditions, out: Path, *, masked: bool, phase: str, seed: int, threads: int, max_seconds: float | None = None,
                    patience: int | None = None, epochs: int | None = None, resume: bool = False, device: str = "cpu",
                    init_from: Path | None = None) -> dict:
    """Train SELDnet on fresh scenes of ``conditions``; write ``out.pt`` and ``out.json``.

    While it trains, ``out.state.pt`` holds the state after the last epoch; ``resume=True``
    continues from it (same options, except ``epochs`` and ``max_seconds``). The file is deleted
    when early stopping or the epoch limit ends the run, and kept when the wall-clock cap does,
    so that a capped run can be resumed later. ``device`` is where the network trains (the scenes
    are always synthesised on the CPU); the checkpoint is written from the CPU either way.
    ``init_from``: a finished run of this module (``init_from.pt`` and ``.json``) with the same
    options, to go on training from its best weights and its scaler at the epoch after its last,
    with a fresh Adam (see :func:`~companion.seld.train.fit`'s ``earlier``). Its record's sittings
    become the first of this run's. A run that a wall-clock cap stops writes only its state.
    """
    try:
        device = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but torch.cuda.is_available() is False; use --device cpu")
    state = out.with_name(out.name + ".state.pt")
    if state.is_file() and not resume:
        raise ValueError(f"{state} holds an unfinished run; pass --resume to continue it, or delete the file to start afresh")
    if resume and not state.is_file():
        raise ValueError(f"--resume was given but there is no {state} to continue from")
    torch.set_num_threads(threads)
    seed_everything(seed)
    commit = git_commit()  # the code that runs, recorded before anything else changes
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    command = " ".join(["python -m companion.seld.experiments"] + run_options(sys.argv[1:]))
    settings = pick(
        # small batches: within a CPU budget the number of optimiser steps, not the batch, limits learning
        # early stopping ends a run; the epoch limit is a safety net, and no wall-clock cap by default
        default=dict(scenes_per_epoch=128, batch_size=4, epochs=DEFAULT_EPOCH_LIMIT, max_seconds=None,
                     patience=DEFAULT_PATIENCE, n_val=32),
        paper=dict(scenes_per_epoch=1000, batch_size=16, epochs=300, max_seconds=None, patience=30, n_val=200),
    )
    if max_seconds is not None:
        settings["max_seconds"] = max_seconds
    for name, value in (("patience", patience), ("epochs", epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number of epochs >= 1, got {value!r}")
    if epochs is not None:
        settings["epochs"] = epochs
    if patience is not None:
        settings["patience"] = patience
    model_config = pick(
        default=SMALL,  # a quarter of the paper's compute: what a shared 2-core CPU trains in the cap
        paper=SELDnetConfig(),  # the paper's sizes: 64 filters, 2 x 128 GRU, 128 FC
    )
    defining = dict(conditions=list(conditions), phase=phase, scale=current(), threads=threads,
                    model_config=asdict(model_config), masked_mse=masked, seed=seed,
                    # the options that decide only when to stop may differ between sittings
                    settings={k: v for k, v in settings.items() if k not in ("epochs", "max_seconds", "patience")})
    earlier, initialised_from = None, None
    if init_from is not None:
        model, scaler, earlier, initialised_from = _earlier_run(Path(init_from), defining)
    else:
        _, scaler = mixed_data(conditions, settings["scenes_per_epoch"], TRAIN_SEED - 1, None, phase=phase)
        model = SELDnet(model_config)
    val, _ = mixed_data(conditions, settings["n_val"], VAL_SEED, scaler, phase=phase)
    history = fit(
        model,
        lambda epoch: mixed_data(conditions, settings["scenes_per_epoch"], TRAIN_SEED + epoch, scaler, phase=phase)[0],
        val,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"],
        masked=masked,
        patience=settings["patience"],
        max_seconds=settings["max_seconds"],
        seed=seed,
        state_path=state,
        state_meta=defining | {"initialised_from": initialised_from},
        sitting=dict(command=command, git_commit=commit, date_utc=now, max_seconds=settings["max_seconds"],
                     device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"),
        device=device,
        earlier=earlier,
    )
    model.cpu()
    if history.stopped_by == "max_seconds":
        print(f"stopped by the wall-clock cap after epoch {len(history.train_loss)}; the state is in {state}: "
              "run the same command with --resume to go on", file=sys.stderr)
        return {"stopped_by": history.stopped_by, "epochs_run": len(history.train_loss), "seconds": history.seconds,
                "best_epoch": history.best_epoch, "val": history.val}
    state.unlink()
    first = history.sittings[0]
    record = {
        "command": first["command"],
        "scale": current(),
        "git_commit": first["git_commit"],
        "date_utc": first["date_utc"],
        "stopped_by": history.stopped_by,
        "sittings": history.sittings,
        "initialised_from": initialised_from,
        "seconds": history.seconds,
        "torch": torch.__version__,
        "device": device.type,
        "threads": threads,
        "conditions": list(conditions),
        "masked_mse": masked,
        "phase": phase,
        "seed": seed,
        "settings": settings,
        "epochs_run": len(history.train_loss),
        "best_epoch": history.best_epoch,
        "scenes_seen": settings["scenes_per_epoch"] * len(history.train_loss),
        "n_parameters": model.n_parameters(),
        "model_config": asdict(model_config),
        "scene_config": {k: v for k, v in asdict(SceneConfig()).items() if k not in ("overlap", "reverberant", "room")},
        "train_loss": history.train_loss,
        "val": history.val,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out.with_suffix(".pt"), model, scaler, {k: record[k] for k in ("conditions", "masked_mse", "phase", "best_epoch", "scale")})
    out.with_suffix(".json").write_text(json.dumps(record, indent=1, default=float))
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.seld.experiments", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a reference SELDnet and write <out>.pt and <out>.json")
    train.add_argument("--conditions", default="ov1-anechoic", help="comma-separated, e.g. ov1-anechoic,ov2-reverberant")
    train.add_argument("--out", required=True, type=Path, help="output path without suffix")
    train.add_argument("--masked", action="store_true", help="activity-masked DOA MSE (default: the paper's unmasked)")
    train.add_argument("--phase", choices=("absolute", "relative"), default="absolute", help="phase features (default: the paper's absolute)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=1)
    train.add_argument("--max-seconds", type=float, default=None, help="cap this sitting's wall-clock seconds (default: no cap); the state is kept for --resume")
    train.add_argument("--patience", type=int, default=None,
                       help=f"stop after this many epochs without a better validation SELD score (default {DEFAULT_PATIENCE})")
    train.add_argument("--epochs", type=int, default=None,
                       help=f"override the epoch limit of the scale (default {DEFAULT_EPOCH_LIMIT}; early stopping normally ends a run first)")
    train.add_argument("--device", default="cpu", help="where the network trains, e.g. cuda (default cpu)")
    train.add_argument("--init-from", type=Path, default=None,
                       help="go on from a finished run with the same options (its best weights, a fresh Adam)")
    train.add_argument("--resume", action="store_true",
                       help="continue the unfinished run saved in <out>.state.pt (same options; --epochs and --max-seconds may change)")
    args = parser.parse_args(argv)
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    for c in conditions:
        scene_config(c)
    record = train_reference(conditions, args.out, masked=args.masked, phase=args.phase, seed=args.seed, threads=args.threads, max_seconds=args.max_seconds,
                             patience=args.patience, epochs=args.epochs, resume=args.resume,
                             device=args.device, init_from=args.init_from)
    print(json.dumps({k: record[k] for k in ("seconds", "epochs_run", "best_epoch", "stopped_by")} | {"best_val": record["val"][record["best_epoch"]]}, default=float))


if __name__ == "__main__":
    main()
