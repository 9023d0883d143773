"""The chapter's networks and baselines on many test scenes, with intervals.

    python -m companion.seld.evaluation --out book/seld/results/evaluation.json

Every test condition draws ``n_scenes`` scenes from seeds that neither training, validation nor the
notebooks' live tables use, and scores them in ``blocks`` blocks of equal size. The headline of a
metric is its value pooled over all the scenes (the metrics are ratios of counts, pooled as the
reference implementations pool them); its 95 % interval is the batch-means one: the blocks'
values have standard deviation ``s``, and the pooled value is within ``t * s / sqrt(blocks)`` with
``t`` the Student quantile of ``blocks - 1`` degrees of freedom.

Estimators, all scored by :func:`companion.seld.metrics.doa_scores` against the same labels:

- each committed network (``ov1``, ``mixed``): every metric of :func:`~companion.seld.metrics.evaluate`;
- ``intensity`` and ``music``, told the *true* number of sources in every frame (an oracle: their
  frame recall is 1 by construction);
- ``intensity@mixed`` and ``music@mixed``, told the multi-condition network's *own* per-frame count,
  so that their DOA error is scored on exactly the frames and counts the network's is: like for like
  (MUSIC's count is cut at the three sources four channels can resolve);
- ``intensity@mdl`` and ``music@mdl``, told the count that the minimum description length reads from
  the audio alone (:func:`companion.seld.music.mdl_counts`): complete classical localisers that know
  nothing of the labels, whose frame recall is the paper's comparison with the network's.

Beside the two reference networks the stored run scores their relative-phase ablations
(``ov1_relphase``, ``mixed_relphase``: phases of Y, Z, X relative to W, the committed checkpoints of
an earlier version of the chapter, trained for a fixed 1620 s without early stopping), and the
multi-condition network retrained from two more seeds (``mixed_seed1``, ``mixed_seed2``: the same
command with ``--seed 1`` or ``--seed 2``, which changes the initial weights and the order of the
batches, not the scenes). With ``mixed`` (seed 0) they are the three training seeds of the
headline table: :func:`seed_spread` gives their mean and spread.

Conditions: the six of the chapter's table; the three anechoic ones with every direction half a
grid step off the training grid (``offgrid``, the paper's unseen-DOA test); and ov1 anechoic at lower
signal-to-noise ratios (``snrN``).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy import stats

from companion.scale import pick
from companion.seld.baseline import frame_directions as intensity_directions
from companion.seld.data import scenes_to_data
from companion.seld.experiments import ASSETS, asset, scene_config
from companion.seld.metrics import doa_scores, evaluate
from companion.seld.music import MAX_SOURCES, mdl_counts
from companion.seld.music import frame_directions as music_directions
from companion.seld.scenes import GRID_STEP_DEG, make_scenes
from companion.seld.train import load_checkpoint, predict

#: Where the stored evaluation lives.
RESULTS = ASSETS.parent / "results" / "evaluation.json"
#: The chapter's table: ov1..ov3, anechoic and reverberant.
TABLE_CONDITIONS = tuple(f"ov{n}-{room}" for room in ("anechoic", "reverberant") for n in (1, 2, 3))
#: Directions half a grid step off the training grid, anechoic.
OFFGRID_CONDITIONS = tuple(f"ov{n}-anechoic-offgrid" for n in (1, 2, 3))
#: ov1 anechoic at lower signal-to-noise ratios (dB); the table's scenes are at 30 dB.
SNRS_DB = (20.0, 10.0, 0.0)
SNR_CONDITIONS = tuple(f"ov1-anechoic-snr{snr:g}" for snr in SNRS_DB)
CONDITIONS = TABLE_CONDITIONS + OFFGRID_CONDITIONS + SNR_CONDITIONS
#: The networks (committed checkpoints ``seldnet_<name>.pt``) and the one whose counts the baselines borrow.
NETWORKS = ("ov1", "mixed")
#: The relative-phase ablations of the two (checkpoints ``seldnet_<name>.pt``), scored beside them.
ABLATIONS = ("ov1_relphase", "mixed_relphase")
COUNT_FROM = "mixed"
#: The multi-condition network from training seeds 1 and 2 (``seldnet_<name>.pt``); ``mixed`` is seed 0.
SEED_RUNS = ("mixed_seed1", "mixed_seed2")
#: The chapter's targets on ov1 anechoic test scenes (ours, not the paper's): an F-score of at least
#: ``TARGET_F1`` and a DOA error of at most ``TARGET_DOA_DEG`` degrees.
TARGET_F1, TARGET_DOA_DEG = 0.9, 10.0


def target_verdict(f1: float, doa_error: float) -> str:
    """How a model's ov1 anechoic F-score and DOA error (degrees) stand to the chapter's targets."""
    if not (np.isfinite(f1) and np.isfinite(doa_error)):
        raise ValueError(f"f1 and doa_error must be finite numbers, got {f1!r} and {doa_error!r}")
    return {
        (True, True): "meets both",
        (True, False): "meets the F-score target but misses the DOA target",
        (False, True): "meets the DOA target but misses the F-score target",
        (False, False): "misses both",
    }[(f1 >= TARGET_F1, doa_error <= TARGET_DOA_DEG)]


#: Seeds of the stored evaluation: condition ``i`` draws from ``SEED + 100 * i`` (no other use of these seeds).
SEED = 9000
#: The metrics kept for the networks (all of ``metrics.evaluate``'s headline ones) and for the baselines.
NETWORK_METRICS = ("er", "f1", "doa_error", "frame_recall", "seld_score", "doa_error_dcase2019", "er20", "f20")
BASELINE_METRICS = ("doa_error", "frame_recall")
#: The classical estimators (:mod:`companion.seld.baseline`'s intensity clusters and :mod:`~companion.seld.music`).
BASELINES = ("intensity", "music")


def condition_config(condition: str):
    """The :class:`~companion.seld.scenes.SceneConfig` of a condition name of :data:`CONDITIONS`.

    ``'ovN-room'`` as :func:`companion.seld.experiments.scene_config`, then ``'-offgrid'`` (every
    direction half a grid step off) or ``'-snrX'`` (noise at X dB).
    """
    base, _, variant = condition.partition("-anechoic")
    if not variant:
        return scene_config(condition)
    config = scene_config(base + "-anechoic")
    if variant == "-offgrid":
        return replace(config, grid_offset_deg=GRID_STEP_DEG / 2)
    if variant.startswith("-snr"):
        try:
            return replace(config, snr_db=float(variant.removeprefix("-snr")))
        except ValueError:
            pass
    raise ValueError(f"condition {condition!r} is not one of 'ovN-room', 'ovN-anechoic-offgrid' or "
                     f"'ovN-anechoic-snrX' (X in dB), e.g. {CONDITIONS[-1]!r}")


def load_networks(names=NETWORKS) -> dict:
    """``{name: (model, scaler, meta)}`` of the committed checkpoints."""
    return {name: load_checkpoint(asset(f"seldnet_{name}.pt")) for name in names}


def estimates(scenes, networks: dict, *, count_from: str | None = COUNT_FROM, oracle: bool = True,
              baselines=BASELINES, self_count: bool = False) -> dict:
    """Every estimator's output on every scene, computed once: ``{estimator: [per scene]}``.

    A network's entry per scene is ``(prob (T, K), doa (T, K, 3))``; a baseline's is
    ``(active (T, M), directions (T, M, 3))`` from its ``frame_directions``. Each of ``baselines``
    is told the true counts (``oracle``), with ``count_from`` naming a network of
    ``networks`` that network's counts (``"<baseline>@<network>"``), and with ``self_count``
    the counts :func:`~companion.seld.music.mdl_counts` estimates from the audio (``"<baseline>@mdl"``).
    """
    unknown = set(baselines) - set(BASELINES)
    if unknown or (count_from is not None and count_from not in networks):
        raise ValueError(f"baselines must be among {BASELINES} and count_from one of {sorted(networks)} or None, "
                         f"got {sorted(baselines)} and {count_from!r}")
    features, out, counts = {}, {}, None
    for name, (model, scaler, meta) in networks.items():
        if meta["phase"] not in features:  # features per phase convention, computed once
            features[meta["phase"]] = scenes_to_data(scenes, phase=meta["phase"])
        data = replace(features[meta["phase"]], feats=scaler.transform(features[meta["phase"]].feats))
        prob, doa = predict(model, data)
        out[name] = list(zip(prob, doa))
        if name == count_from:
            counts = [(p > 0.5).sum(axis=-1) for p in prob]  # (frames,) sources the network reports
    true_counts = [s.sed.sum(axis=1) for s in scenes]
    own_counts = [mdl_counts(s.audio) for s in scenes] if self_count else None
    for label in baselines:
        directions = {"intensity": intensity_directions, "music": music_directions}[label]
        told = ({label: true_counts} if oracle else {}) | (
            {f"{label}@{count_from}": counts} if counts is not None else {}) | (
            {f"{label}@mdl": own_counts} if own_counts is not None else {})
        for estimator, per_scene in told.items():
            if label == "music":  # four channels resolve at most MAX_SOURCES: a larger borrowed count is cut
                per_scene = [np.minimum(c, MAX_SOURCES) for c in per_scene]
            out[estimator] = [directions(s.audio, c) for s, c in zip(scenes, per_scene)]
    return out


def score(outputs: dict, scenes, networks: dict, *, network_metrics=NETWORK_METRICS) -> dict:
    """``{estimator: {metric: value}}`` pooled over ``scenes`` (and the matching slice of ``outputs``).

    A network gets ``network_metrics`` of :func:`~companion.seld.metrics.evaluate` (None: all of
    them), a baseline :data:`BASELINE_METRICS`.
    """
    ref_sed = np.concatenate([s.sed for s in scenes])
    ref_doa = np.concatenate([s.doa for s in scenes])
    fps = int(round(scenes[0].config.frames_per_second))
    row = {}
    for estimator, per_scene in outputs.items():
        if estimator in networks:
            prob = np.concatenate([p for p, _ in per_scene])
            doa = np.concatenate([d for _, d in per_scene])
            scores = evaluate(prob, doa, ref_sed, ref_doa, fps)
            row[estimator] = {k: float(scores[k]) for k in (network_metrics or scores)}
        else:
            width = max(1, max(a.shape[1] for a, _ in per_scene))
            active = np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a, _ in per_scene])
            dirs = np.concatenate([np.pad(d, ((0, 0), (0, width - d.shape[1]), (0, 0))) for _, d in per_scene])
            scores = doa_scores(active, dirs, ref_sed, ref_doa)
            row[estimator] = {k: float(scores[k]) for k in BASELINE_METRICS}
    return row


def interval(pooled: float, block_values, block_scenes: int, level: float = 0.95) -> dict:
    """The pooled value with its batch-means interval over ``block_values`` (one per block of ``block_scenes``)."""
    v = np.asarray(block_values, dtype=float)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"need the values of at least two blocks, got {v.tolist()}")
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return {"value": float(pooled), "lo": float(pooled) - half, "hi": float(pooled) + half,
            "block_sd": float(v.std(ddof=1)), "block_scenes": int(block_scenes), "blocks": v.tolist()}


def evaluate_condition(condition: str, networks: dict, n_scenes: int, blocks: int, seed: int) -> dict:
    """``{estimator: {metric: interval(...)}}`` of one condition, ``n_scenes`` scenes in ``blocks`` blocks."""
    if blocks < 2 or n_scenes % blocks:
        raise ValueError(f"n_scenes ({n_scenes}) must split into blocks ({blocks}) >= 2 of equal size; "
                         "e.g. 100 scenes in 10 blocks")
    scenes = make_scenes(n_scenes, condition_config(condition), seed)
    outputs = estimates(scenes, networks, self_count=True)
    size = n_scenes // blocks
    pooled = score(outputs, scenes, networks)
    per_block = [score({e: o[i * size:(i + 1) * size] for e, o in outputs.items()}, scenes[i * size:(i + 1) * size],
                       networks) for i in range(blocks)]
    return {est: {m: interval(v, [b[est][m] for b in per_block], size) for m, v in metrics.items()}
            for est, metrics in pooled.items()}


def evaluate_all(conditions=CONDITIONS, *, n_scenes: int | None = None, blocks: int = 10, seed: int = SEED,
                 progress: bool = True) -> dict:
    """The stored evaluation: every condition of ``conditions``; JSON-ready."""
    n_scenes = n_scenes or pick(default=100, paper=300)
    networks = load_networks(NETWORKS + ABLATIONS + SEED_RUNS)
    t0, rows = time.perf_counter(), {}
    for condition in conditions:
        rows[condition] = evaluate_condition(condition, networks, n_scenes, blocks, seed + 100 * CONDITIONS.index(condition))
        if progress:
            mixed = rows[condition]["mixed"]
            print(f"{condition:>24}: F {mixed['f1']['value']:.3f}, DOA {mixed['doa_error']['value']:.1f} deg "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"n_scenes": n_scenes, "blocks": blocks, "seed": seed, "count_from": COUNT_FROM,
            "networks": {n: {"phase": meta["phase"], "conditions": meta["conditions"]}
                         for n, (_, _, meta) in networks.items()},
            "conditions": rows, "seconds": time.perf_counter() - t0}


def seed_spread(row: dict, metric: str, runs=(COUNT_FROM,) + SEED_RUNS) -> dict:
    """Mean and spread over training seeds of one stored metric of one condition.

    ``row`` is a condition of :func:`evaluate_all` (``{estimator: {metric: interval}}``); ``runs``
    name the networks trained from different seeds. Returns the pooled value of each run
    (``values``), their mean, sample standard deviation (``sd``), ``min`` and ``max``: the spread
    that a different training seed makes, beside the test-set noise of each run's own interval.
    """
    missing = [r for r in runs if r not in row or metric not in row[r]]
    if len(runs) < 2 or missing:
        raise ValueError(f"need at least two seed runs that report {metric!r}; {missing or list(runs)} "
                         f"missing or too few among {sorted(row)}")
    v = np.array([row[r][metric]["value"] for r in runs], dtype=float)
    return {"values": v.tolist(), "mean": float(v.mean()), "sd": float(v.std(ddof=1)),
            "min": float(v.min()), "max": float(v.max())}


def agrees(live: float, stored: dict, live_scenes: int, *, z: float = 3.0, resolution: float = 0.0) -> bool:
    """Whether a value measured live on ``live_scenes`` other scenes agrees with a stored :func:`interval`.

    The noise of both is estimated from the stored blocks' spread: a block of ``b`` scenes has
    standard deviation ``block_sd``, so a value over ``n`` scenes has about ``block_sd * sqrt(b / n)``.
    A ratio of counts cannot be known more finely than one count of the live sample's denominator
    (``resolution``, e.g. ``1 / n_ref`` for an error rate): where the blocks never vary (a stored
    error rate of zero in every block), their spread says nothing about that, so the standard error
    is not taken below ``resolution``. Agreement: the two differ by at most ``z`` standard errors of
    their difference.
    """
    if live_scenes < 1:
        raise ValueError(f"live_scenes must be >= 1, got {live_scenes!r}")
    if not resolution >= 0:
        raise ValueError(f"resolution must be >= 0 (one count of the live denominator), got {resolution!r}")
    b = stored["block_scenes"]
    n_stored = b * len(stored["blocks"])
    se = max(stored["block_sd"] * np.sqrt(b / live_scenes + b / n_stored), resolution)
    return bool(abs(live - stored["value"]) <= z * se)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m companion.seld.evaluation", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scenes", type=int, default=None, help="scenes per condition (default 100; paper scale 300)")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--conditions", default=",".join(CONDITIONS))
    args = parser.parse_args(argv)
    from companion.provenance import write_result

    conditions = tuple(c.strip() for c in args.conditions.split(",") if c.strip())
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown conditions {unknown}; choose from {', '.join(CONDITIONS)}")
    result = evaluate_all(conditions, n_scenes=args.scenes, blocks=args.blocks)
    command = "python -m companion.seld.evaluation " + " ".join(argv if argv is not None else sys.argv[1:])
    write_result(args.out, result, command.strip())
    print(f"wrote {args.out} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
