"""How the two errors scale with the number of classes, for trained networks.

For each ``k`` two MLPs are trained on the warm-up family
:class:`~companion.distributions.WarmupOverlapND` (pairs of overlapping classes along the first
axis), both on :func:`pair_features` (which pair, the offset within it, the other coordinates),
for a fixed budget:

* **ERM** to interpolation (notebook 2's recipe: 50 points per class, 19 uninformative
  coordinates beside the first so that the overlap's labels can be memorised), then scaled by
  the *oracle* temperature (the best any temperature can do, fitted against the true posterior
  of the test points);
* **within-pair Mixup** (``alpha``, two points per mixture, both from one pair: ``mix_groups =
  y // 2``), the chapter's restricted d-Mixup, on a large one-dimensional sample and a cosine
  step-size decay, so that it can approach the population optimum the theorem is about.

Each is scored by its expected KL from the Bayes posterior on fresh test points, beside two
things computed without any network: the oracle-TS KL of the constant-margin interpolator
(:func:`~companion.calibration.theory.oracle_ts_kl`) and the KL of the within-pair Mixup
*optimum* (:func:`~companion.calibration.mixup.mixup_optimal_predictor`, Monte Carlo). The
training curves (mean loss per epoch) come back too, to show the runs converged.

``python -m companion.calibration.k_scaling`` writes the full run (five ``k``, three seeds) with
provenance to ``book/calibration/results/k_scaling.json``; notebook 3 shows it and reruns one
seed of two ``k`` live.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from companion.calibration.metrics import expected_kl
from companion.calibration.mixup import binned_predictor_kl, mixup_optimal_predictor
from companion.calibration.temperature import OracleTemperatureScaler
from companion.calibration.theory import oracle_ts_kl
from companion.calibration.training import MLPClassifier
from companion.distributions import WarmupOverlapND
from companion.provenance import write_result
from companion.seeding import as_generator

RESULTS = Path(__file__).resolve().parents[2] / "book" / "calibration" / "results" / "k_scaling.json"

#: The full run's settings; the notebook's live rerun uses the same with fewer ``ks`` and seeds.
#: ERM: notebook 2's interpolating recipe (50 points per class in 20 dimensions, lr 1e-2, until the
#: training loss is below 1e-3 or 600 epochs). Mixup: a large sample on the pair features, long
#: enough at a decaying step size for the training curve to flatten.
DEFAULTS = dict(rho=0.5, erm_dim=20, erm_per_class=50, erm_epochs=600, erm_lr=1e-2,
                mix_per_pair=1000, mix_epochs=60, mix_lr=3e-3, hidden=(128, 128), batch_size=500,
                alpha=1.0, n_test=20_000)


def pair_features(dist: WarmupOverlapND, x: np.ndarray) -> np.ndarray:
    """``x`` ``(n, dim)`` -> ``(n, k/2 + dim)``: the one-hot pair of the first coordinate, its
    offset within the pair (in [0, 2]) and the uninformative coordinates.

    A fixed, invertible map of ``x`` (on the support), so a network on these features is a network
    on ``x``. Within one pair it is affine, so mixing two points of a pair and then mapping is the
    same as mapping and then mixing: within-pair Mixup means the same thing in either space. It
    spares a small MLP from learning k/2 sharp pair boundaries along one axis, which it otherwise
    fails to do in a CPU-sized budget at k = 32.
    """
    pair = np.clip(np.floor(x[:, 0] / dist.spacing).astype(int), 0, dist.n_classes // 2 - 1)
    onehot = np.eye(dist.n_classes // 2)[pair]
    offset = x[:, :1] - (pair * dist.spacing)[:, None]
    return np.concatenate([onehot, offset, x[:, 1:]], axis=1)


def mixup_optimum_kl(k: int, rho: float, *, n_samples: int = 1_000_000, seed: int = 0) -> float:
    """Expected KL (nats) of the within-pair 2-point Mixup optimum (alpha = 1), by Monte Carlo."""
    dist = WarmupOverlapND(k, rho, dim=1)
    edges = np.arange(-0.1, (k // 2 - 1) * dist.spacing + 2.11, 0.01)
    g = as_generator(seed)
    table = mixup_optimal_predictor(dist, edges, alpha=1.0, mix_size=2, n_samples=n_samples, rng=g,
                                    within_pair=True, fill_empty=True)
    return binned_predictor_kl(dist, edges, table, n=200_000, rng=g)


def run_one(k: int, seed: int, *, rho: float, erm_dim: int, erm_per_class: int, erm_epochs: int,
            erm_lr: float, mix_per_pair: int, mix_epochs: int, mix_lr: float, hidden: tuple[int, ...],
            batch_size: int, alpha: float, n_test: int, budget_check: bool = False) -> dict:
    """Train ERM and within-pair Mixup at one ``k`` and seed; KLs (nats) and training curves.

    ``budget_check=True`` also trains the Mixup network with half the epochs
    (``mixup_kl_half_budget``): if doubling the budget barely moves the KL, the budget suffices.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2 or k % 2:
        raise ValueError(f"k must be an even integer >= 2 (classes come in pairs), got {k!r}")
    k, rng = int(k), as_generator(1000 * int(k) + int(seed))
    hidden = tuple(hidden)

    erm_dist = WarmupOverlapND(k, rho, dim=erm_dim)
    x_tr, y_tr = erm_dist.sample(erm_per_class * k, rng)
    x_te, _ = erm_dist.sample(n_test, rng)
    post_erm = erm_dist.posterior(x_te)
    erm = MLPClassifier(k, hidden=hidden, epochs=erm_epochs, lr=erm_lr, batch_size=batch_size,
                        seed=seed).fit(pair_features(erm_dist, x_tr), y_tr)
    f_te = pair_features(erm_dist, x_te)
    oracle = OracleTemperatureScaler().fit(erm.decision_function(f_te), post_erm)
    erm_kl = expected_kl(post_erm, erm.predict_proba(f_te))

    mix_dist = WarmupOverlapND(k, rho, dim=1)
    x_tr, y_tr = mix_dist.sample(mix_per_pair * (k // 2), rng)
    x_te, _ = mix_dist.sample(n_test, rng)
    f_tr, f_te = pair_features(mix_dist, x_tr), pair_features(mix_dist, x_te)
    post = mix_dist.posterior(x_te)

    def train_mixup(epochs: int) -> MLPClassifier:
        return MLPClassifier(k, hidden=hidden, epochs=epochs, lr=mix_lr, batch_size=batch_size,
                             mixup_alpha=alpha, stop_loss=None, lr_schedule="cosine",
                             seed=seed).fit(f_tr, y_tr, mix_groups=y_tr // 2)

    mix = train_mixup(mix_epochs)
    extra = {}
    if budget_check:
        half = train_mixup(max(1, mix_epochs // 2))
        extra["mixup_kl_half_budget"] = expected_kl(post, half.predict_proba(f_te))
    return {"k": k, "seed": int(seed),
            "erm_kl": erm_kl, "erm_oracle_ts_kl": float(oracle.kl_),
            "erm_oracle_T": float(oracle.temperature_), "erm_final_loss": erm.loss_history_[-1],
            "erm_epochs_run": erm.epochs_run_,
            "mixup_kl": expected_kl(post, mix.predict_proba(f_te)), **extra,
            "mixup_final_loss": mix.loss_history_[-1],
            "erm_curve": [float(v) for v in erm.loss_history_],
            "mixup_curve": [float(v) for v in mix.loss_history_]}


def curve_settled(curve, *, tail: float = 0.1) -> float:
    """Relative change of the mean loss between the last two ``tail`` fractions of a training
    curve: ``|mean(last) / mean(before last) - 1|``; small when the curve has flattened."""
    curve = np.asarray(curve, dtype=np.float64)
    m = max(1, int(round(tail * curve.size)))
    if curve.size < 2 * m:
        raise ValueError(f"a curve of {curve.size} epochs is too short for two tails of {m}")
    return float(abs(curve[-m:].mean() / curve[-2 * m:-m].mean() - 1.0))


def run(ks=(2, 4, 8, 16, 32), seeds=(0, 1, 2), **settings) -> dict:
    """Every ``k`` and seed, plus the network-free references per ``k``."""
    cfg = {**DEFAULTS, **settings}
    t0 = time.perf_counter()
    runs = [run_one(k, s, budget_check=True, **cfg) for k in ks for s in seeds]
    refs = {str(k): {"interpolator_oracle_ts_kl": float(oracle_ts_kl(k, cfg["rho"])),
                     "mixup_optimum_kl": mixup_optimum_kl(k, cfg["rho"])} for k in ks}
    return {"settings": {**cfg, "hidden": list(cfg["hidden"])}, "ks": list(ks), "seeds": list(seeds),
            "runs": runs, "references": refs, "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    # one thread, as in the notebooks: the stored run and the live rerun then do the same arithmetic
    torch.set_num_threads(1)
    result = run()
    write_result(args.out, result, "python -m companion.calibration.k_scaling")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
