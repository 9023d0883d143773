"""SELD metrics: segment-based SED scores, DOA error and frame recall, the SELD score,
the DCASE2020 location-aware scores, and the released SELDnet code's chord-averaged DOA error.

All functions take frame-wise arrays of one (or several concatenated) recordings:
binary activity ``(T, K)`` (bool or 0/1; probabilities are refused) and DOA vectors
``(T, K, 3)`` per class.

Two families sit side by side. The *reference* functions reproduce the arithmetic of the
DCASE baseline code line for line, quirks included:

- :func:`sed_scores` with ``dcase2019_blocks=True`` and :func:`doa_scores_dcase2019`:
  ``sharathadavanne/seld-dcase2019``, ``metrics/evaluation_metrics.py``
  (``er_overall_1sec``, ``f1_overall_1sec``, ``compute_doa_scores_regr``);
- :func:`location_aware_scores`: ``sharathadavanne/seld-dcase2020``,
  ``metrics/SELD_evaluation_metrics.py`` (``SELDMetrics.update_seld_scores`` and
  ``compute_seld_scores``), with the Cartesian distance of ``update_seld_scores_xyz``
  (chord clipped to ``[-1, 1]``) as ``distance="dcase2020_chord"``;
- :func:`paper_doa_error`: ``sharathadavanne/seld-net``, ``evaluation_metrics.py``
  (``compute_doa_scores_regr_xyz``) with ``seld.py``'s ``2 arcsin(d / 2)``.

The chapter's own variants are :func:`doa_scores` (the mean over Hungarian-matched pairs)
and the unclipped great-circle angle.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from companion.seld.foa import angular_distance

EPS = np.finfo(float).eps  # the reference code's ``eps`` in its divisions


def _check_binary(a, who: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != bool:
        bad = a[(a != 0) & (a != 1)]
        if bad.size:
            raise ValueError(
                f"{who}: activity must be binary (0/1 or bool), got the value {bad.flat[0]!r}; "
                "threshold probabilities first, e.g. prob > 0.5"
            )
    return a.astype(bool)


def _check_activity(pred, ref, name="activity") -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred), np.asarray(ref)
    if pred.ndim != 2 or pred.shape != ref.shape:
        raise ValueError(f"{name}: need two (frames, classes) arrays of one shape, got {pred.shape} and {ref.shape}")
    return _check_binary(pred, f"{name} pred"), _check_binary(ref, f"{name} ref")


def segment_activity(active, frames_per_segment: int, *, drop_last_frame: bool = False) -> np.ndarray:
    """Pool frame activity ``(T, K)`` into segments ``(ceil(T / n), K)``: active if any frame is.

    ``drop_last_frame=True`` pools frames ``[i n, i n + n - 1)`` only, leaving out the last
    frame of every segment, as the DCASE2019 (and SELDnet) code's slice
    ``O[i * bs : i * bs + bs - 1]`` does.
    """
    if int(frames_per_segment) != frames_per_segment or frames_per_segment < 1:
        raise ValueError(f"frames_per_segment must be a positive integer, got {frames_per_segment}")
    n = int(frames_per_segment)
    if drop_last_frame and n < 2:
        raise ValueError(f"drop_last_frame needs frames_per_segment >= 2, got {n} (a segment would be empty)")
    a = np.asarray(active, dtype=bool)
    n_seg = -(-a.shape[0] // n)
    padded = np.zeros((n_seg * n, a.shape[1]), dtype=bool)
    padded[: a.shape[0]] = a
    blocks = padded.reshape(n_seg, n, a.shape[1])
    return (blocks[:, : n - 1] if drop_last_frame else blocks).any(axis=1)


def sed_scores(pred, ref, frames_per_segment: int, *, dcase2019_blocks: bool = False) -> dict:
    """Segment-based error rate and F-score (the DCASE / ``sed_eval`` definitions).

    In each segment, with false positives ``FP`` and false negatives ``FN`` counted over
    classes, substitutions ``S = min(FP, FN)``, deletions ``D = max(0, FN - FP)`` and
    insertions ``I = max(0, FP - FN)``; ``ER = (sum S + sum D + sum I) / sum N_ref`` and
    ``F = 2 TP / (2 TP + FP + FN)`` summed over all segments and classes (micro average).

    Parameters
    ----------
    pred, ref : binary ``(frames, classes)`` arrays.
    frames_per_segment : frames in one segment (the frame rate, for one-second segments).
    dcase2019_blocks : pool each segment without its last frame, as the DCASE2019 code does
        (see :func:`segment_activity`); ``False`` (default) pools every frame, as ``sed_eval``.

    Returns
    -------
    dict with ``error_rate``, ``f1``, ``precision``, ``recall`` and the counts ``S, D, I, n_ref``.
    """
    pred, ref = _check_activity(pred, ref, "sed_scores")
    p = segment_activity(pred, frames_per_segment, drop_last_frame=dcase2019_blocks)
    r = segment_activity(ref, frames_per_segment, drop_last_frame=dcase2019_blocks)
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
    active = _check_binary(active, who)
    doa = np.asarray(doa, dtype=float)
    if active.ndim != 2:
        raise ValueError(f"{who}: activity must be (frames, classes), got shape {active.shape}")
    if doa.shape != active.shape + (3,):
        raise ValueError(f"{who}: DOA array {doa.shape} must be the activity shape {active.shape} + (3,)")
    if not np.all(np.isfinite(doa)):
        bad = np.argwhere(~np.isfinite(doa))[0]
        raise ValueError(
            f"{who}: DOA has the non-finite value {doa[tuple(bad)]} at (frame, class, axis) "
            f"{tuple(int(i) for i in bad)}; give finite vectors (e.g. zeros for inactive classes)"
        )
    return active, doa


def _check_pair(pred_sed, pred_doa, ref_sed, ref_doa):
    pred_sed, pred_doa = _check_doa(pred_sed, pred_doa, "pred")
    ref_sed, ref_doa = _check_doa(ref_sed, ref_doa, "ref")
    if pred_sed.shape[0] != ref_sed.shape[0]:
        raise ValueError(
            f"pred has {pred_sed.shape[0]} frames but ref has {ref_sed.shape[0]}; "
            "score the same frames of the same recordings"
        )
    return pred_sed, pred_doa, ref_sed, ref_doa


def _hungarian_frames(pred_sed, pred_doa, ref_sed, ref_doa):
    """Per frame with sources on both sides: the summed angle of the Hungarian matching and
    the number of matched pairs."""
    n_pred, n_ref = pred_sed.sum(axis=1), ref_sed.sum(axis=1)
    total, pairs = 0.0, 0
    for t in np.flatnonzero((n_pred > 0) & (n_ref > 0)):
        P, R = pred_doa[t, pred_sed[t]], ref_doa[t, ref_sed[t]]  # (p, 3), (r, 3)
        cost = angular_distance(R[:, None, :], P[None, :, :])  # (r, p)
        rows, cols = linear_sum_assignment(cost)
        total += float(cost[rows, cols].sum())
        pairs += len(rows)
    return total, pairs, n_pred, n_ref


def doa_scores(pred_sed, pred_doa, ref_sed, ref_doa) -> dict:
    """DOA error with Hungarian assignment, and frame recall: the chapter's variant.

    In every frame the active predicted directions are matched to the active reference
    directions regardless of class, minimising the summed great-circle angle
    (``scipy.optimize.linear_sum_assignment``). ``doa_error`` is the mean matched angle in
    degrees **over the matched pairs** (``nan`` if none); :func:`doa_scores_dcase2019` divides
    the same sum by the number of predicted DOAs instead. ``frame_recall`` is the fraction of
    frames in which the number of predicted sources equals the number of reference sources
    (0 == 0 counts). Matching ignores classes, so ``pred`` may have another number of slots
    than ``ref`` (a class-agnostic baseline): shapes ``(T, K_pred)``, ``(T, K_pred, 3)``,
    ``(T, K)``, ``(T, K, 3)``.
    """
    total, pairs, n_pred, n_ref = _hungarian_frames(*_check_pair(pred_sed, pred_doa, ref_sed, ref_doa))
    return {
        "doa_error": total / pairs if pairs else float("nan"),
        "frame_recall": float(np.mean(n_pred == n_ref)),
        "n_pairs": pairs,
    }


def doa_scores_dcase2019(pred_sed, pred_doa, ref_sed, ref_doa) -> dict:
    """DOA error and frame recall exactly as DCASE2019's ``compute_doa_scores_regr``.

    The Hungarian-matched angles of every frame are summed (frames with no reference or no
    prediction add nothing) and divided by the total number of **predicted** DOAs, so an
    unmatched extra prediction adds zero to the sum and one to the count, and a missed
    reference adds nothing at all. With no predicted DOA the reference code returns 0.
    Frame recall as in :func:`doa_scores`. Returns ``doa_error`` (degrees), ``frame_recall``,
    ``n_pred`` (the denominator) and ``n_pairs``.
    """
    total, pairs, n_pred, n_ref = _hungarian_frames(*_check_pair(pred_sed, pred_doa, ref_sed, ref_doa))
    count = int(n_pred.sum())
    return {
        "doa_error": total / count if count else 0.0,
        "frame_recall": float(np.mean(n_pred == n_ref)),
        "n_pred": count,
        "n_pairs": pairs,
    }


def chord_angle_clipped(u, v) -> np.ndarray:
    """DCASE2020's ``distance_between_cartesian_coordinates``: the chord ``|u - v|`` of the
    vectors as given (not normalised), clipped to ``[-1, 1]``, then ``2 arcsin(d / 2)`` in
    degrees. The clip caps every error at 60 degrees (chord 1)."""
    d = np.clip(np.linalg.norm(np.asarray(u, float) - np.asarray(v, float), axis=-1), -1, 1)
    return np.degrees(2 * np.arcsin(d / 2.0))


def paper_doa_error(pred_doa, ref_sed, ref_doa) -> dict:
    """The released SELDnet code's DOA error beside the correct angular mean.

    For every reference-active (frame, class) the network's **raw** output vector of that
    same class (the tanh outputs, not normalised) is compared with the reference unit vector
    through the chord ``d = |u - v|`` (``compute_doa_scores_regr_xyz``'s ``doa_loss_gt``).

    - ``paper``: ``2 arcsin(mean(d) / 2)``, the mean raw chord converted to an angle, the
      released code's, and the paper's, number (``nan`` if the mean chord exceeds 2);
    - ``angular``: the mean great-circle angle between the *normalised* output and the
      reference over the same class-paired entries, the correct average of the same pairs.

    Both in degrees. The two differ for two reasons: averaging chords before converting them
    (Jensen: lowers the number) and the shrinkage of the raw vectors (raises it).
    """
    ref_sed, ref_doa = _check_doa(ref_sed, ref_doa, "ref")
    pred_doa = np.asarray(pred_doa, dtype=float)
    if pred_doa.shape != ref_doa.shape:
        raise ValueError(f"pred DOA shape {pred_doa.shape} differs from ref {ref_doa.shape}")
    _check_doa(ref_sed, pred_doa, "pred")
    u, v = pred_doa[ref_sed], ref_doa[ref_sed]
    if u.shape[0] == 0:
        return {"paper": float("nan"), "angular": float("nan")}
    half = np.linalg.norm(u - v, axis=1).mean() / 2
    return {
        "paper": float(np.degrees(2 * np.arcsin(half))) if half <= 1 else float("nan"),
        "angular": float(angular_distance(u, v).mean()),
    }


def seld_score(error_rate: float, f1: float, doa_error: float, frame_recall: float) -> float:
    """The SELD score (lower is better): ``mean(ER, 1 - F, DOA / 180, 1 - FR)``."""
    return float(np.mean([error_rate, 1 - f1, doa_error / 180.0, 1 - frame_recall]))


DISTANCES = ("angle", "dcase2020_chord")


def location_aware_scores(
    pred_sed, pred_doa, ref_sed, ref_doa, frames_per_segment: int, *,
    threshold_deg: float = 20.0, distance: str = "angle",
) -> dict:
    """DCASE2020 location-aware detection and class-aware localisation, in segments.

    The arithmetic of ``SELDMetrics.update_seld_scores`` (seld-dcase2020, one instance per
    class and frame). For each segment and class: the class counts once in ``N_ref`` if it is
    active in any reference frame of the segment and once in ``N_sys`` if in any predicted
    frame. If it is in both, its error is the mean distance over the frames where both are
    active; that error adds to ``DE`` (no threshold, ``DE_TP += 1``), and the detection is a
    true positive if the error is at most ``threshold_deg``, otherwise a **false negative
    only** (not also a false positive). With no shared frame it is a false negative. A class
    only in the reference is a false negative, only in the prediction a false positive. Per
    segment ``S = min(FP, FN)``, ``D = max(0, FN - FP)``, ``I = max(0, FP - FN)``.

    Returns ``error_rate`` ``(S + D + I) / N_ref``; ``f1`` = 2PR/(P+R) with ``P = TP / N_sys``,
    ``R = TP / N_ref``; ``de`` = ``sum DE / DE_TP`` (180 if no localised detection) and
    ``de_f`` the F-score of ``DE_TP`` (``DE_TP / N_sys``, ``DE_TP / N_ref``), each with the
    reference's ``eps`` in the denominators; also ``le`` (= ``de``), ``lr`` (``DE_TP / N_ref``)
    and the counts.

    ``distance``: ``"angle"`` (default) the great-circle angle between the directions, which
    is ``update_seld_scores``' spherical distance; ``"dcase2020_chord"`` the Cartesian distance
    of ``update_seld_scores_xyz`` (:func:`chord_angle_clipped`, capped at 60 degrees).
    """
    pred_sed, pred_doa, ref_sed, ref_doa = _check_pair(pred_sed, pred_doa, ref_sed, ref_doa)
    if pred_sed.shape != ref_sed.shape:
        raise ValueError(f"pred and ref activity shapes differ: {pred_sed.shape} vs {ref_sed.shape}")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
    if not np.isfinite(threshold_deg) or threshold_deg < 0:
        raise ValueError(f"threshold_deg must be a finite angle >= 0, got {threshold_deg}")
    p_seg = segment_activity(pred_sed, frames_per_segment)
    r_seg = segment_activity(ref_sed, frames_per_segment)
    n = int(frames_per_segment)
    if distance == "angle":
        dist = angular_distance(pred_doa, ref_doa)  # (T, K)
    else:
        dist = chord_angle_clipped(ref_doa, pred_doa)
    both = pred_sed & ref_sed
    tp_seg = np.zeros(p_seg.shape[0], dtype=int)
    de_sum, de_tp = 0.0, 0
    for s, k in zip(*np.nonzero(p_seg & r_seg)):
        shared = both[s * n : (s + 1) * n, k]
        if not shared.any():
            continue
        err = float(dist[s * n : (s + 1) * n, k][shared].mean())
        de_sum += err
        de_tp += 1
        tp_seg[s] += err <= threshold_deg
    n_sys_seg, n_ref_seg = p_seg.sum(axis=1), r_seg.sum(axis=1)
    fp_seg = (p_seg & ~r_seg).sum(axis=1)  # predicted classes absent from the reference
    fn_seg = n_ref_seg - tp_seg  # misses, far detections and detections with no shared frame
    tp, n_sys, n_ref = int(tp_seg.sum()), int(n_sys_seg.sum()), int(n_ref_seg.sum())
    S = int(np.minimum(fp_seg, fn_seg).sum())
    D = int(np.maximum(0, fn_seg - fp_seg).sum())
    I = int(np.maximum(0, fp_seg - fn_seg).sum())

    def f_score(hits):
        precision, recall = hits / (n_sys + EPS), hits / (n_ref + EPS)
        return float(2 * precision * recall / (precision + recall + EPS))

    de = de_sum / (de_tp + EPS) if de_tp else 180.0
    return {
        "error_rate": float((S + D + I) / (n_ref + EPS)),
        "f1": f_score(tp),
        "de": float(de),
        "de_f": f_score(de_tp),
        "le": float(de),
        "lr": float(de_tp / n_ref) if n_ref else float("nan"),
        "TP": tp,
        "FP": int(fp_seg.sum()),
        "FN": int(fn_seg.sum()),
        "S": S,
        "D": D,
        "I": I,
        "n_ref": n_ref,
        "n_sys": n_sys,
    }


def evaluate(pred_prob, pred_doa, ref_sed, ref_doa, frames_per_segment: int, *, threshold: float = 0.5) -> dict:
    """Every metric of the chapter from network outputs: probabilities ``(T, K)``, DOA ``(T, K, 3)``.

    ``doa_error`` (the chapter's Hungarian mean over matched pairs) enters ``seld_score``;
    ``doa_error_dcase2019`` is the reference's division by the predicted DOAs. ``n_ref`` (active
    reference class-segments, the error rate's denominator) and ``n_frames`` (frame recall's) say
    how finely the ratios resolve: one count moves ER by ``1 / n_ref``.
    """
    pred_prob = np.asarray(pred_prob, dtype=float)
    if not np.all(np.isfinite(pred_prob)):
        raise ValueError("pred_prob has non-finite values; pass the network's probabilities")
    pred_sed = pred_prob > threshold
    sed = sed_scores(pred_sed, ref_sed, frames_per_segment)
    doa = doa_scores(pred_sed, pred_doa, ref_sed, ref_doa)
    d19 = doa_scores_dcase2019(pred_sed, pred_doa, ref_sed, ref_doa)
    paper = paper_doa_error(pred_doa, ref_sed, ref_doa)
    loc = location_aware_scores(pred_sed, pred_doa, ref_sed, ref_doa, frames_per_segment)
    doa_err = doa["doa_error"] if np.isfinite(doa["doa_error"]) else 180.0
    return {
        "er": sed["error_rate"],
        "f1": sed["f1"],
        "doa_error": doa_err,
        "doa_error_dcase2019": d19["doa_error"],
        "frame_recall": doa["frame_recall"],
        "seld_score": seld_score(sed["error_rate"], sed["f1"], doa_err, doa["frame_recall"]),
        "doa_error_paper": paper["paper"],
        "doa_error_angular": paper["angular"],
        "f20": loc["f1"],
        "er20": loc["error_rate"],
        "le": loc["le"],
        "lr": loc["lr"],
        "de_f": loc["de_f"],
        "n_ref": sed["n_ref"],
        "n_frames": int(len(pred_sed)),
    }
