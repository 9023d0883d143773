"""SELD metrics: segment-based SED scores, DOA error and frame recall, the SELD score,
the DCASE2020 location-aware scores, and the paper's chord-averaged DOA error.

All functions take frame-wise arrays of one (or several concatenated) recordings:
activity ``(T, K)`` (bool or 0/1) and unit DOA vectors ``(T, K, 3)`` per class.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from companion.seld.foa import angular_distance


def _check_activity(pred, ref, name="activity") -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.ndim != 2 or pred.shape != ref.shape:
        raise ValueError(f"{name}: need two (frames, classes) arrays of one shape, got {pred.shape} and {ref.shape}")
    for a, who in ((pred, "pred"), (ref, "ref")):
        if not np.all((a == 0) | (a == 1)):
            raise ValueError(f"{name}: {who} must be binary (0/1 or bool); threshold probabilities first")
    return pred.astype(bool), ref.astype(bool)


def segment_activity(active, frames_per_segment: int) -> np.ndarray:
    """Pool frame activity ``(T, K)`` into segments ``(ceil(T / n), K)``: active if any frame is."""
    if int(frames_per_segment) != frames_per_segment or frames_per_segment < 1:
        raise ValueError(f"frames_per_segment must be a positive integer, got {frames_per_segment}")
    n = int(frames_per_segment)
    a = np.asarray(active, dtype=bool)
    n_seg = -(-a.shape[0] // n)
    padded = np.zeros((n_seg * n, a.shape[1]), dtype=bool)
    padded[: a.shape[0]] = a
    return padded.reshape(n_seg, n, a.shape[1]).any(axis=1)


def sed_scores(pred, ref, frames_per_segment: int) -> dict:
    """Segment-based error rate and F-score (the DCASE / ``sed_eval`` definitions).

    In each segment, with ``FP`` and ``FN`` counted over classes, substitutions
    ``S = min(FP, FN)``, deletions ``D = max(0, FN - FP)``, insertions ``I = max(0, FP - FN)``;
    ``ER = (sum S + sum D + sum I) / sum N_ref`` and ``F = 2 TP / (2 TP + FP + FN)`` summed over
    all segments and classes (micro average).

    Parameters
    ----------
    pred, ref : binary ``(frames, classes)`` arrays.
    frames_per_segment : frames in one segment (the frame rate, for one-second segments).

    Returns
    -------
    dict with ``error_rate``, ``f1``, ``precision``, ``recall`` and the counts ``S, D, I, n_ref``.
    """
    pred, ref = _check_activity(pred, ref, "sed_scores")
    p, r = segment_activity(pred, frames_per_segment), segment_activity(ref, frames_per_segment)
    tp = np.sum(p & r)
    fp_seg, fn_seg = np.sum(p & ~r, axis=1), np.sum(~p & r, axis=1)
    S = np.minimum(fp_seg, fn_seg).sum()
    D = np.maximum(0, fn_seg - fp_seg).sum()
    I = np.maximum(0, fp_seg - fn_seg).sum()
    n_ref, n_sys = r.sum(), p.sum()
    fp, fn = fp_seg.sum(), fn_seg.sum()
    return {
        "error_rate": float((S + D + I) / n_ref) if n_ref else float("nan"),
        "f1": float(2 * tp / (2 * tp + fp + fn)) if (2 * tp + fp + fn) else float("nan"),
        "precision": float(tp / n_sys) if n_sys else float("nan"),
        "recall": float(tp / n_ref) if n_ref else float("nan"),
        "S": int(S),
        "D": int(D),
        "I": int(I),
        "n_ref": int(n_ref),
    }


def _check_doa(active, doa, who):
    active, doa = np.asarray(active).astype(bool), np.asarray(doa, dtype=float)
    if doa.shape != active.shape + (3,):
        raise ValueError(f"{who}: DOA array {doa.shape} must be the activity shape {active.shape} + (3,)")
    return active, doa


def doa_scores(pred_sed, pred_doa, ref_sed, ref_doa) -> dict:
    """DOA error with Hungarian assignment, and frame recall (the paper's two DOA metrics).

    In every frame the active predicted directions are matched to the active reference
    directions regardless of class, minimising the summed great-circle angle
    (``scipy.optimize.linear_sum_assignment``). ``doa_error`` is the mean matched angle in
    degrees over all matched pairs. ``frame_recall`` is the fraction of frames in which the
    number of predicted sources equals the number of reference sources (0 == 0 counts).
    Matching ignores classes, so ``pred`` may have another number of slots than ``ref``
    (a class-agnostic baseline): shapes ``(T, K_pred)``, ``(T, K_pred, 3)``, ``(T, K)``, ``(T, K, 3)``.
    """
    pred_sed, pred_doa = _check_doa(pred_sed, pred_doa, "pred")
    ref_sed, ref_doa = _check_doa(ref_sed, ref_doa, "ref")
    if pred_sed.shape[0] != ref_sed.shape[0]:
        raise ValueError(f"pred has {pred_sed.shape[0]} frames but ref has {ref_sed.shape[0]}")
    n_pred, n_ref = pred_sed.sum(axis=1), ref_sed.sum(axis=1)
    total, pairs = 0.0, 0
    for t in np.flatnonzero((n_pred > 0) & (n_ref > 0)):
        P, R = pred_doa[t, pred_sed[t]], ref_doa[t, ref_sed[t]]  # (p, 3), (r, 3)
        cost = angular_distance(R[:, None, :], P[None, :, :])  # (r, p)
        rows, cols = linear_sum_assignment(cost)
        total += float(cost[rows, cols].sum())
        pairs += len(rows)
    return {
        "doa_error": total / pairs if pairs else float("nan"),
        "frame_recall": float(np.mean(n_pred == n_ref)),
        "n_pairs": pairs,
    }


def paper_doa_error(pred_doa, ref_sed, ref_doa) -> dict:
    """The released SELDnet code's DOA error beside the correct angular mean.

    For every reference-active (frame, class) the predicted vector of that same class is
    normalised and compared with the reference through the chord ``d = |u - v|``.
    ``paper``: ``2 arcsin(mean(d) / 2)``, the mean chord converted to an angle (the
    released code's, and the paper's, number); ``angular``: ``mean(2 arcsin(d / 2))``,
    the mean of the angles. Both in degrees; ``paper <= angular`` always (Jensen).
    """
    ref_sed, ref_doa = _check_doa(ref_sed, ref_doa, "ref")
    pred_doa = np.asarray(pred_doa, dtype=float)
    if pred_doa.shape != ref_doa.shape:
        raise ValueError(f"pred DOA shape {pred_doa.shape} differs from ref {ref_doa.shape}")
    u = pred_doa[ref_sed]
    u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    chord = np.clip(np.linalg.norm(u - ref_doa[ref_sed], axis=1), 0.0, 2.0)
    if chord.size == 0:
        return {"paper": float("nan"), "angular": float("nan")}
    return {
        "paper": float(np.degrees(2 * np.arcsin(chord.mean() / 2))),
        "angular": float(np.degrees(2 * np.arcsin(chord / 2)).mean()),
    }


def seld_score(error_rate: float, f1: float, doa_error: float, frame_recall: float) -> float:
    """The SELD score (lower is better): ``mean(ER, 1 - F, DOA / 180, 1 - FR)``."""
    return float(np.mean([error_rate, 1 - f1, doa_error / 180.0, 1 - frame_recall]))


def location_aware_scores(pred_sed, pred_doa, ref_sed, ref_doa, frames_per_segment: int, *, threshold_deg: float = 20.0) -> dict:
    """DCASE2020-style location-aware detection in segments (one class instance per frame).

    For each segment and class active in both prediction and reference, the localisation
    error is the mean angle between the two over the frames where both are active. It is a
    true positive when that mean is at most ``threshold_deg``; otherwise (or when no frame
    is shared) it counts as a false negative, as in the DCASE2020 code. Returns
    ``f1`` = 2PR/(P+R) with P = TP/N_sys and R = TP/N_ref, ``error_rate`` (S, D, I as in
    :func:`sed_scores` with these TP), ``le`` (mean error over localised detections, no
    threshold; 180 if none) and ``lr`` (localised detections / N_ref).
    """
    pred_sed, pred_doa = _check_doa(pred_sed, pred_doa, "pred")
    ref_sed, ref_doa = _check_doa(ref_sed, ref_doa, "ref")
    if pred_sed.shape != ref_sed.shape:
        raise ValueError(f"pred and ref activity shapes differ: {pred_sed.shape} vs {ref_sed.shape}")
    p_seg = segment_activity(pred_sed, frames_per_segment)
    r_seg = segment_activity(ref_sed, frames_per_segment)
    n = int(frames_per_segment)
    dist = angular_distance(pred_doa, ref_doa)  # (T, K)
    both = pred_sed & ref_sed
    tp_seg = np.zeros(p_seg.shape[0], dtype=int)
    le_sum, n_localised = 0.0, 0
    for s, k in zip(*np.nonzero(p_seg & r_seg)):
        shared = both[s * n : (s + 1) * n, k]
        if not shared.any():
            continue
        err = float(dist[s * n : (s + 1) * n, k][shared].mean())
        le_sum += err
        n_localised += 1
        tp_seg[s] += err <= threshold_deg
    n_sys_seg, n_ref_seg = p_seg.sum(axis=1), r_seg.sum(axis=1)
    fp_seg, fn_seg = n_sys_seg - tp_seg, n_ref_seg - tp_seg
    tp, n_sys, n_ref = tp_seg.sum(), n_sys_seg.sum(), n_ref_seg.sum()
    S = np.minimum(fp_seg, fn_seg).sum()
    D = np.maximum(0, fn_seg - fp_seg).sum()
    I = np.maximum(0, fp_seg - fn_seg).sum()
    precision = tp / n_sys if n_sys else 0.0
    recall = tp / n_ref if n_ref else 0.0
    return {
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "error_rate": float((S + D + I) / n_ref) if n_ref else float("nan"),
        "le": float(le_sum / n_localised) if n_localised else 180.0,
        "lr": float(n_localised / n_ref) if n_ref else float("nan"),
    }


def evaluate(pred_prob, pred_doa, ref_sed, ref_doa, frames_per_segment: int, *, threshold: float = 0.5) -> dict:
    """Every metric of the chapter from network outputs: probabilities ``(T, K)``, DOA ``(T, K, 3)``."""
    pred_sed = np.asarray(pred_prob) > threshold
    sed = sed_scores(pred_sed, ref_sed, frames_per_segment)
    doa = doa_scores(pred_sed, pred_doa, ref_sed, ref_doa)
    paper = paper_doa_error(pred_doa, ref_sed, ref_doa)
    loc = location_aware_scores(pred_sed, pred_doa, ref_sed, ref_doa, frames_per_segment)
    doa_err = doa["doa_error"] if np.isfinite(doa["doa_error"]) else 180.0
    return {
        "er": sed["error_rate"],
        "f1": sed["f1"],
        "doa_error": doa_err,
        "frame_recall": doa["frame_recall"],
        "seld_score": seld_score(sed["error_rate"], sed["f1"], doa_err, doa["frame_recall"]),
        "doa_error_paper": paper["paper"],
        "doa_error_angular": paper["angular"],
        "f20": loc["f1"],
        "er20": loc["error_rate"],
        "le": loc["le"],
        "lr": loc["lr"],
    }
