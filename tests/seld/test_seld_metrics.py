"""SELD metrics against hand-computed cases, the DCASE toolbox ``sed_eval`` itself, and an
independent segment-based reference.

``sed_eval_reference`` below re-implements the segment-based metric the way ``sed_eval``
computes it -- frame activity turned into an event list, the event list into a segment roll
with ``floor(onset / resolution)`` .. ``ceil(offset / resolution)``, then per-segment counts
``S = min(N_ref, N_sys) - N_tp``, ``D = max(0, N_ref - N_sys)``, ``I = max(0, N_sys - N_ref)``
-- a different route from the package's pooling of frames, readable without the toolbox.
(``sed_eval``'s dependency ``dcase_util`` needs ``pkg_resources``, hence ``setuptools<81`` in
the test extras.)
"""

import math

import numpy as np
import pytest

from companion.seld.foa import direction_to_unit
from companion.seld.metrics import (
    doa_scores,
    evaluate,
    location_aware_scores,
    paper_doa_error,
    sed_scores,
    seld_score,
)


def activity_to_events(active, fps):
    """Contiguous runs of a (frames, classes) binary array -> [(class, onset_s, offset_s)]."""
    events = []
    for k in range(active.shape[1]):
        padded = np.concatenate([[0], active[:, k].astype(int), [0]])
        starts = np.flatnonzero(np.diff(padded) == 1)
        stops = np.flatnonzero(np.diff(padded) == -1)
        events += [(k, a / fps, b / fps) for a, b in zip(starts, stops)]
    return events


def sed_eval_reference(pred, ref, fps, n_classes, resolution=1.0):
    ref_events, sys_events = activity_to_events(ref, fps), activity_to_events(pred, fps)
    n_seg = max(math.ceil(off / resolution) for _, _, off in ref_events + sys_events)
    roll_ref, roll_sys = np.zeros((n_seg, n_classes), bool), np.zeros((n_seg, n_classes), bool)
    for roll, events in ((roll_ref, ref_events), (roll_sys, sys_events)):
        for k, on, off in events:
            roll[math.floor(on / resolution) : math.ceil(off / resolution), k] = True
    S = D = I = n_ref = n_sys = n_tp = 0
    for r, s in zip(roll_ref, roll_sys):
        nr, ns, nt = int(r.sum()), int(s.sum()), int((r & s).sum())
        S += min(nr, ns) - nt
        D += max(0, nr - ns)
        I += max(0, ns - nr)
        n_ref, n_sys, n_tp = n_ref + nr, n_sys + ns, n_tp + nt
    precision, recall = n_tp / n_sys, n_tp / n_ref
    return (S + D + I) / n_ref, 2 * precision * recall / (precision + recall)


def test_sed_scores_hand_computed():
    # 2 segments of 2 frames, 3 classes. Segment 0: ref {0}, pred {1} -> one substitution.
    # Segment 1: ref {1, 2}, pred {1} -> one deletion. ER = 2/3; TP = 1, P = 1/2, R = 1/3, F = 0.4.
    ref = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 1], [0, 1, 0]])
    pred = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]])
    s = sed_scores(pred, ref, frames_per_segment=2)
    assert s["error_rate"] == pytest.approx(2 / 3) and s["f1"] == pytest.approx(0.4)
    assert (s["S"], s["D"], s["I"]) == (1, 1, 0)
    perfect = sed_scores(ref, ref, 2)
    assert perfect["error_rate"] == 0.0 and perfect["f1"] == 1.0


def random_activity(seed, min_classes=1):
    """Blocky reference activity (events of several frames) and a prediction with random flips,
    ``(pred, ref, fps, n_classes)``; the clip ends with a partial segment."""
    rng = np.random.default_rng(seed)
    fps, n_classes = int(rng.choice([5, 10, 50])), int(rng.integers(min_classes, 6))
    n_frames = int(rng.integers(3, 12)) * fps + int(rng.integers(0, fps))
    ref = rng.random((n_frames, n_classes)) < 0.3
    ref = np.repeat(ref[:: max(1, fps // 5)], max(1, fps // 5), axis=0)[:n_frames]
    ref[0, 0] = True
    pred = ref ^ (rng.random(ref.shape) < 0.05)
    pred[-1, -1] = True
    return pred, ref, fps, n_classes


@pytest.mark.parametrize("seed", range(6))
def test_sed_scores_equal_the_segment_based_reference_on_random_inputs(seed):
    pred, ref, fps, n_classes = random_activity(seed)
    ours = sed_scores(pred, ref, fps)
    er, f = sed_eval_reference(pred, ref, fps, n_classes)
    assert ours["error_rate"] == pytest.approx(er, abs=1e-12)
    assert ours["f1"] == pytest.approx(f, abs=1e-12)


def test_doa_scores_match_regardless_of_class_by_hungarian_assignment():
    u = direction_to_unit([0.0, 90.0, 0.0], [0.0, 0.0, 10.0])
    ref_sed = np.array([[1, 1], [1, 0], [0, 0]], bool)
    ref_doa = np.zeros((3, 2, 3))
    ref_doa[0] = u[:2]
    ref_doa[1, 0] = u[0]
    # frame 0: predictions in swapped classes (assignment must pair them by direction: 0 error);
    # frame 1: one prediction 10 deg off plus a spurious one; frame 2: nothing, correctly
    pred_sed = np.array([[1, 1], [1, 1], [0, 0]], bool)
    pred_doa = np.zeros((3, 2, 3))
    pred_doa[0] = u[[1, 0]]
    pred_doa[1] = [u[2], u[1]]
    s = doa_scores(pred_sed, pred_doa, ref_sed, ref_doa)
    assert s["n_pairs"] == 3
    assert s["doa_error"] == pytest.approx(10.0 / 3)
    assert s["frame_recall"] == pytest.approx(2 / 3)  # frames 0 and 2 have the right count


def test_paper_chord_average_understates_the_angular_mean():
    # two frames, errors 0 and 90 deg: chords 0 and sqrt(2). Mean angle 45 deg;
    # the mean chord sqrt(2)/2 converted to an angle is 2 asin(sqrt(2)/4) = 41.4 deg.
    ref_sed = np.ones((2, 1), bool)
    ref_doa = np.broadcast_to(direction_to_unit(0.0, 0.0), (2, 1, 3)).copy()
    pred_doa = np.stack([direction_to_unit(0.0, 0.0), direction_to_unit(90.0, 0.0)])[:, None, :]
    s = paper_doa_error(pred_doa, ref_sed, ref_doa)
    assert s["angular"] == pytest.approx(45.0)
    assert s["paper"] == pytest.approx(np.degrees(2 * np.arcsin(np.sqrt(2) / 4)))
    rng = np.random.default_rng(0)  # Jensen on random errors too
    pred = rng.standard_normal((50, 1, 3))
    ref = np.broadcast_to(direction_to_unit(0.0, 0.0), (50, 1, 3))
    r = paper_doa_error(pred, np.ones((50, 1), bool), ref)
    assert r["paper"] < r["angular"]


def test_location_aware_scores_count_far_detections_as_misses():
    fps = 2
    ref_sed = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
    ref_doa = np.zeros((4, 2, 3))
    ref_doa[:2, 0] = direction_to_unit(0.0, 0.0)
    ref_doa[2:, 1] = direction_to_unit(90.0, 0.0)
    pred_doa = ref_doa.copy()
    pred_doa[:2, 0] = direction_to_unit(10.0, 0.0)  # segment 0: 10 deg off -> within 20 deg
    pred_doa[2:, 1] = direction_to_unit(150.0, 0.0)  # segment 1: 60 deg off -> a miss
    s = location_aware_scores(ref_sed, pred_doa, ref_sed, ref_doa, fps)
    assert s["le"] == pytest.approx(35.0)  # mean of 10 and 60, no threshold
    assert s["lr"] == pytest.approx(1.0)
    assert s["f1"] == pytest.approx(0.5)  # TP 1 of N_sys 2 and N_ref 2
    assert s["error_rate"] == pytest.approx(0.5)  # segment 1: a substitution
    assert location_aware_scores(ref_sed, pred_doa, ref_sed, ref_doa, fps, threshold_deg=90)["f1"] == 1.0


def test_seld_score_and_evaluate_agree():
    rng = np.random.default_rng(1)
    ref_sed = rng.random((40, 3)) < 0.3
    ref_doa = direction_to_unit(rng.choice([-90.0, 0.0, 90.0], (40, 3)), 0.0) * ref_sed[..., None]
    prob = np.where(ref_sed, 0.9, 0.1)
    m = evaluate(prob, ref_doa + 0.01, ref_sed, ref_doa, 10)
    assert m["er"] == 0.0 and m["f1"] == 1.0 and m["frame_recall"] == 1.0 and m["doa_error"] < 1.0
    assert m["seld_score"] == pytest.approx(seld_score(m["er"], m["f1"], m["doa_error"], m["frame_recall"]))
    assert seld_score(0.0, 1.0, 0.0, 1.0) == 0.0 and seld_score(1.0, 0.0, 180.0, 0.0) == 1.0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: sed_scores(np.ones((4, 2)) * 0.7, np.ones((4, 2)), 2), "binary"),
        (lambda: sed_scores(np.ones((4, 2)), np.ones((4, 3)), 2), "one shape"),
        (lambda: sed_scores(np.ones((4, 2)), np.ones((4, 2)), 0), "positive integer"),
        (lambda: doa_scores(np.ones((4, 2)), np.zeros((4, 2, 2)), np.ones((4, 2)), np.zeros((4, 2, 3))), r"\+ \(3,\)"),
        (lambda: doa_scores(np.ones((3, 2)), np.zeros((3, 2, 3)), np.ones((4, 2)), np.zeros((4, 2, 3))), "3 frames"),
    ],
)
def test_bad_input_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _sed_eval_scores(pred, ref, fps, n_classes):
    """ER and F of the installed DCASE toolbox, ``sed_eval``, on the same activity."""
    import dcase_util
    import sed_eval

    labels = [f"class{k}" for k in range(n_classes)]

    def container(active):
        return dcase_util.containers.MetaDataContainer([
            {"event_label": labels[k], "onset": on, "offset": off, "filename": "scene.wav"}
            for k, on, off in activity_to_events(active, fps)])

    metrics = sed_eval.sound_event.SegmentBasedMetrics(event_label_list=labels, time_resolution=1.0)
    metrics.evaluate(reference_event_list=container(ref), estimated_event_list=container(pred))
    overall = metrics.results_overall_metrics()
    return overall["error_rate"]["error_rate"], overall["f_measure"]["f_measure"]


@pytest.mark.parametrize("seed", range(6))
def test_sed_scores_equal_the_installed_sed_eval_on_random_inputs(seed):
    pred, ref, fps, n_classes = random_activity(100 + seed, min_classes=2)
    ours = sed_scores(pred, ref, fps)
    er, f = _sed_eval_scores(pred, ref, fps, n_classes)
    assert ours["error_rate"] == pytest.approx(er, abs=1e-12)
    assert ours["f1"] == pytest.approx(f, abs=1e-12)
