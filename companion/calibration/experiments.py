"""The chapter's two reproductions, runnable as one command each.

``python -m companion.calibration.experiments synthetic --out FILE.json`` -- two 300-D Gaussians
(Chidambaram & Ge, 2024, synthetic experiment); ``... digits --out FILE.json`` -- pair-flip label
noise on scikit-learn's bundled digits. ``COMPANION_SCALE=paper`` switches to the paper's sizes.

Protocol of both (after the paper's code): the training split is corrupted first (digits only),
then 10 % of it is held out as the calibration set for temperature scaling; the test set is
clean. Methods: ERM trained for every epoch (the paper's 200, no early stop), ERM stopped at
interpolation (synthetic only), Mixup and d-Mixup, each with and without a converged temperature;
ERM+TS is also fitted with the paper code's LBFGS recipe (``ERM+TS (LBFGS-20)``). All metrics are
computed from logits.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from scipy.special import softmax

from companion.calibration.metrics import ace, adaptive_ece, ece, nll_from_logits
from companion.calibration.noise import pair_flip_noise
from companion.calibration.temperature import TemperatureScaler, lbfgs_recipe_temperature
from companion.calibration.training import MLPClassifier
from companion.distributions import TwoGaussians
from companion.scale import current as current_scale
from companion.scale import pick
from companion.seeding import seed_everything

#: The paper's synthetic-table numbers as quoted by secondary summaries of its text (we could not
#: read the table itself): ERM+TS NLL at the widest and narrowest
#: separation, 4-Mixup's NLL at the narrowest, and the largest NLL of any Mixup variant.
PAPER_SYNTHETIC = {"erm_ts_nll_mu_0.25": 0.26, "erm_ts_nll_mu_0.01": 4.30,
                   "4mixup_nll_mu_0.01": 0.74, "mixup_nll_max": 0.83}
#: Where each number of :data:`PAPER_SYNTHETIC` comes from: "secondary" = a summary of the paper,
#: not the paper read by us ("primary").
PAPER_SYNTHETIC_SOURCE = {key: "secondary" for key in PAPER_SYNTHETIC}


def evaluate(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test metrics from logits ``(N, k)``: NLL (nats, from ``log_softmax``), ECE and ACE (15
    equal-width bins, top label; ACE is netcal's unweighted bin average), adaptive ECE, error."""
    probs = softmax(logits, axis=1)
    return {"nll": nll_from_logits(logits, labels), "ece": ece(probs, labels, 15),
            "ace": ace(probs, labels, 15), "adaptive_ece": adaptive_ece(probs, labels, 15),
            "error": float(np.mean(probs.argmax(axis=1) != labels))}


def _methods(x_fit, y_fit, x_cal, y_cal, x_test, y_test, *, n_classes: int, net: dict,
             mix_sizes: tuple[int, ...], seed: int, early_stop: bool = True) -> list[dict]:
    """Train the models, temperature-scale them on the calibration split, score on test.

    ``ERM`` runs every epoch of ``net`` (the paper's protocol, no early stop); ``ERM (early
    stop)`` stops once an epoch's mean training loss is below 1e-3. Each model gets a converged
    TS row (``+TS``); ERM also gets the paper code's LBFGS recipe (``+TS (LBFGS-20)``)."""
    rows = []
    models = [("ERM", MLPClassifier(n_classes, seed=seed, **{**net, "stop_loss": None}))]
    if early_stop:
        models.append(("ERM (early stop)", MLPClassifier(n_classes, seed=seed,
                                                         **{**net, "stop_loss": 1e-3})))
    for m in mix_sizes:
        name = "Mixup" if m == 2 else f"{m - 1}-Mixup"
        models.append((name, MLPClassifier(n_classes, seed=seed, mixup_alpha=1.0, mix_size=m,
                                           **{**net, "stop_loss": None})))
    for name, model in models:
        model.fit(x_fit, y_fit)
        z_cal, z_test = model.decision_function(x_cal), model.decision_function(x_test)
        rows.append({"method": name, "temperature": 1.0, "train_loss": model.train_loss_,
                     "epochs_run": model.epochs_run_,
                     "loss_history": [float(v) for v in model.loss_history_],
                     **evaluate(z_test, y_test)})
        ts = TemperatureScaler().fit(z_cal, y_cal)
        rows.append({"method": f"{name}+TS", "temperature": ts.temperature_,
                     **evaluate(z_test / ts.temperature_, y_test)})
        if name.startswith("ERM"):
            t_lbfgs = lbfgs_recipe_temperature(z_cal, y_cal)
            rows.append({"method": f"{name}+TS (LBFGS-20)", "temperature": t_lbfgs,
                         **evaluate(z_test / t_lbfgs, y_test)})
    return rows


@dataclass(frozen=True)
class SyntheticConfig:
    mus: tuple[float, ...] = (0.25, 0.05, 0.01)  # the separations of the paper's Table 2
    dim: int = 300                                # 3 x 10 x 10 in the paper
    n: int = pick(default=1000, paper=5000)       # paper: 5000, split 80/20
    seeds: tuple[int, ...] = pick(default=(0,), paper=(0, 1, 2, 3, 4))
    epochs: int = 200                             # the paper's 200 epochs, no early stop
    hidden: tuple[int, ...] = (128, 128)          # the paper trains ResNeXt-50; we use an MLP
    mix_sizes: tuple[int, ...] = (2, 5)           # Mixup and 4-Mixup (five points per mixture)
    early_stop: bool = True                       # also train the early-stopped ERM beside it


def run_synthetic(config: SyntheticConfig = SyntheticConfig(), *, progress: bool = False,
                  on_job_done=None) -> list[dict]:
    """One row per (mu, seed, method) with test NLL, ECE, ACE, error and temperature.

    Jobs run seed by seed (every mu for seed 0 first), and ``on_job_done(rows)`` is called after
    each, so an interrupted long run still leaves complete seeds behind."""
    from tqdm.auto import tqdm

    rows = []
    jobs = [(mu, s) for s in config.seeds for mu in config.mus]
    for mu, seed in tqdm(jobs, disable=not progress, desc="synthetic"):
        rng = seed_everything(seed)
        x, y = TwoGaussians(config.dim, mu).sample(config.n, rng)
        n_train = int(0.8 * config.n)
        n_cal = int(0.1 * n_train)
        net = {"hidden": config.hidden, "epochs": config.epochs, "batch_size": 500}
        for r in _methods(x[n_cal:n_train], y[n_cal:n_train], x[:n_cal], y[:n_cal],
                          x[n_train:], y[n_train:], n_classes=2, net=net,
                          mix_sizes=config.mix_sizes, seed=seed, early_stop=config.early_stop):
            rows.append({"mu": mu, "seed": seed, **r})
        if on_job_done is not None:
            on_job_done(rows)
    return rows


@dataclass(frozen=True)
class DigitsConfig:
    noise_rates: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    seeds: tuple[int, ...] = pick(default=(0,), paper=(0, 1, 2))
    epochs: int = 300                                   # full-batch Adam steps, all of them run
    hidden: tuple[int, ...] = (256,)                    # one wide layer: interpolates 1.1k noisy digits fast
    lr: float = 1e-2
    test_frac: float = 0.3
    mix_sizes: tuple[int, ...] = (2,)                   # Mixup; () trains ERM only
    dtype: str = "float64"                              # so that another CPU recomputes the stored rows


def digits_split_and_noise(y_all: np.ndarray, rate: float, seed: int, test_frac: float):
    """The digits protocol's random choices for one ``(rate, seed)``: a train/test split, then
    pair-flip noise on the training labels. Returns ``(train_idx, test_idx, noisy_train_labels,
    mapping)``, where ``mapping[c]`` is the class that ``c`` is flipped to."""
    rng = seed_everything(seed)
    order = rng.permutation(len(y_all))
    n_test = int(test_frac * len(y_all))
    test, train = order[:n_test], order[n_test:]
    y_noisy, mapping = pair_flip_noise(y_all[train], 10, rate, rng)  # corrupt, then split off cal
    return train, test, y_noisy, mapping


def run_digits(config: DigitsConfig = DigitsConfig(), *, progress: bool = False) -> list[dict]:
    """Pair-flip label noise on the training split of ``load_digits``; clean test set."""
    from sklearn.datasets import load_digits
    from tqdm.auto import tqdm

    x_all, y_all = load_digits(return_X_y=True)
    x_all = x_all / 16.0  # pixel intensities 0..16 -> [0, 1]
    rows = []
    jobs = [(r, s) for r in config.noise_rates for s in config.seeds]
    for rate, seed in tqdm(jobs, disable=not progress, desc="digits"):
        train, test, y_noisy, _ = digits_split_and_noise(y_all, rate, seed, config.test_frac)
        n_cal = int(0.1 * len(train))
        net = {"hidden": config.hidden, "epochs": config.epochs, "batch_size": len(train), "lr": config.lr,
               "dtype": config.dtype}
        for r in _methods(x_all[train[n_cal:]], y_noisy[n_cal:], x_all[train[:n_cal]],
                          y_noisy[:n_cal], x_all[test], y_all[test], n_classes=10, net=net,
                          mix_sizes=config.mix_sizes, seed=seed, early_stop=False):
            rows.append({"noise": rate, "seed": seed, **r})
    return rows


def summarise(rows: list[dict], by: str, metrics=("nll", "ece", "ace", "error")) -> dict:
    """``{by value: {method: {metric: (mean, std)}}}`` over seeds, as nested plain dicts (``std``
    is the population standard deviation over seeds, ``ddof=0``)."""
    out: dict = {}
    for key in sorted({(r[by], r["method"]) for r in rows}, key=lambda t: (-t[0], t[1])):
        sel = [r for r in rows if (r[by], r["method"]) == key]
        out.setdefault(key[0], {})[key[1]] = {
            m: (float(np.mean([r[m] for r in sel])), float(np.std([r[m] for r in sel]))) for m in metrics}
    return out


def _provenance(argv: list[str]) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {"command": f"COMPANION_SCALE={current_scale()} python -m companion.calibration.experiments "
                       + " ".join(argv),
            "git_commit": commit, "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''} "
                       f"{os.cpu_count()} cores, python {platform.python_version()}, torch {torch.__version__}",
            "device": f"cpu, torch threads {torch.get_num_threads()}", "scale": current_scale()}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=["synthetic", "digits"])
    parser.add_argument("--out", required=True, help="path of the JSON file to write")
    parser.add_argument("--mix-sizes", type=int, nargs="+", default=None,
                        help="synthetic only: points per mixture for the Mixup models "
                             "(2 = Mixup, 5 = 4-Mixup); default 2 5")
    args = parser.parse_args(argv)
    if args.mix_sizes is not None and args.experiment != "synthetic":
        parser.error("--mix-sizes applies to the synthetic experiment only")
    torch.set_num_threads(1)
    import time

    t0 = time.perf_counter()
    provenance = _provenance(argv)
    if args.experiment == "synthetic":
        config = SyntheticConfig()
        if args.mix_sizes is not None:
            config = replace(config, mix_sizes=tuple(args.mix_sizes))
    else:
        config = DigitsConfig()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    def write(rows: list[dict], complete: bool) -> None:
        result = {"provenance": {**provenance, "wall_seconds": time.perf_counter() - t0,
                                 "complete": complete},
                  "config": asdict(config),
                  "paper": PAPER_SYNTHETIC if args.experiment == "synthetic" else {}, "rows": rows}
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)

    if args.experiment == "synthetic":
        rows = run_synthetic(config, progress=True, on_job_done=lambda r: write(r, False))
    else:
        rows = run_digits(config, progress=True)
    write(rows, True)
    print(f"wrote {len(rows)} rows to {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
