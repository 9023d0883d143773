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


def test_paper_chord_average_understates_the_angular_mean_for_unit_outputs():
    # two frames, unit outputs with errors 0 and 90 deg: chords 0 and sqrt(2). Mean angle 45 deg;
    # the mean chord sqrt(2)/2 converted to an angle is 2 asin(sqrt(2)/4) = 41.4 deg.
    ref_sed = np.ones((2, 1), bool)
    ref_doa = np.broadcast_to(direction_to_unit(0.0, 0.0), (2, 1, 3)).copy()
    pred_doa = np.stack([direction_to_unit(0.0, 0.0), direction_to_unit(90.0, 0.0)])[:, None, :]
    s = paper_doa_error(pred_doa, ref_sed, ref_doa)
    assert s["angular"] == pytest.approx(45.0)
    assert s["paper"] == pytest.approx(np.degrees(2 * np.arcsin(np.sqrt(2) / 4)))


def test_location_aware_scores_count_far_detections_as_misses_only():
    fps = 2
    ref_sed = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], bool)
    ref_doa = np.zeros((4, 2, 3))
    ref_doa[:2, 0] = direction_to_unit(0.0, 0.0)
    ref_doa[2:, 1] = direction_to_unit(90.0, 0.0)
    pred_doa = ref_doa.copy()
    pred_doa[:2, 0] = direction_to_unit(10.0, 0.0)  # segment 0: 10 deg off -> within 20 deg
    pred_doa[2:, 1] = direction_to_unit(150.0, 0.0)  # segment 1: 60 deg off -> a miss
    s = location_aware_scores(ref_sed, pred_doa, ref_sed, ref_doa, fps)
    assert s["le"] == pytest.approx(35.0) and s["de"] == s["le"]  # mean of 10 and 60, no threshold
    assert s["lr"] == pytest.approx(1.0) and s["de_f"] == pytest.approx(1.0)
    assert s["f1"] == pytest.approx(0.5)  # TP 1 of N_sys 2 and N_ref 2
    assert s["error_rate"] == pytest.approx(0.5)  # segment 1: a deletion (FN only, no FP)
    assert (s["S"], s["D"], s["I"]) == (0, 1, 0)
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


# ---------------------------------------------------------------------------------------
# Transcriptions of the DCASE reference code, written for these tests from the published
# code (loops and all, NumPy-2 safe: ``np.float`` -> ``float``), to check the package's
# vectorised versions against. Nothing here is imported from the package.
#
# [2019] sharathadavanne/seld-dcase2019, metrics/evaluation_metrics.py (MIT):
#        f1_overall_1sec, er_overall_1sec, compute_doa_scores_regr, distance_between_gt_pred,
#        distance_between_spherical_coordinates_rad.
# [2020] sharathadavanne/seld-dcase2020, metrics/SELD_evaluation_metrics.py (MIT):
#        SELDMetrics.update_seld_scores / update_seld_scores_xyz / compute_seld_scores,
#        distance_between_cartesian_coordinates; and cls_feature_class.py segment_labels.
# [net]  sharathadavanne/seld-net, evaluation_metrics.py: compute_doa_scores_regr_xyz
#        (doa_loss_gt), converted in seld.py as 2 * arcsin(doa_loss_gt / 2).
# ---------------------------------------------------------------------------------------
from scipy.optimize import linear_sum_assignment

from companion.seld.metrics import chord_angle_clipped, doa_scores_dcase2019

EPS = np.finfo(float).eps


def ref2019_blocks(O, block_size):
    new_size = int(np.ceil(float(O.shape[0]) / block_size))
    O_block = np.zeros((new_size, O.shape[1]))
    for i in range(0, new_size):
        O_block[i, :] = np.max(O[int(i * block_size):int(i * block_size + block_size - 1), :], axis=0)
    return O_block


def ref2019_sed(O, T, block_size):
    O, T = ref2019_blocks(O, block_size), ref2019_blocks(T, block_size)
    TP = ((2 * T - O) == 1).sum()
    Nref, Nsys = T.sum(), O.sum()
    prec = float(TP) / float(Nsys + EPS)
    recall = float(TP) / float(Nref + EPS)
    f1 = 2 * prec * recall / (prec + recall + EPS)
    FP = np.logical_and(T == 0, O == 1).sum(1)
    FN = np.logical_and(T == 1, O == 0).sum(1)
    S, D, I = np.minimum(FP, FN).sum(), np.maximum(0, FN - FP).sum(), np.maximum(0, FP - FN).sum()
    return (S + D + I) / (Nref + 0.0), f1


def ref2019_sph_dist(az1, ele1, az2, ele2):
    dist = np.sin(ele1) * np.sin(ele2) + np.cos(ele1) * np.cos(ele2) * np.cos(np.abs(az1 - az2))
    return np.arccos(np.clip(dist, -1, 1)) * 180 / np.pi


def ref2019_gt_pred(gt_list_rad, pred_list_rad):
    gt_len, pred_len = gt_list_rad.shape[0], pred_list_rad.shape[0]
    ind_pairs = np.array([[x, y] for y in range(pred_len) for x in range(gt_len)])
    cost_mat = np.zeros((gt_len, pred_len))
    if gt_len and pred_len:
        az1, ele1 = gt_list_rad[ind_pairs[:, 0], 0], gt_list_rad[ind_pairs[:, 0], 1]
        az2, ele2 = pred_list_rad[ind_pairs[:, 1], 0], pred_list_rad[ind_pairs[:, 1], 1]
        cost_mat[ind_pairs[:, 0], ind_pairs[:, 1]] = ref2019_sph_dist(az1, ele1, az2, ele2)
    row_ind, col_ind = linear_sum_assignment(cost_mat)
    return cost_mat[row_ind, col_ind].sum()


def ref2019_doa(pred_doa_rad, gt_doa_rad, pred_sed, gt_sed):
    """compute_doa_scores_regr: DOA arrays (frames, 2K) = [azimuths | elevations] in radians."""
    nb_src_gt_list = np.zeros(gt_doa_rad.shape[0]).astype(int)
    nb_src_pred_list = np.zeros(gt_doa_rad.shape[0]).astype(int)
    good_frame_cnt, doa_loss_pred, nb_sed = 0, 0.0, gt_sed.shape[-1]
    for frame_cnt, sed_frame in enumerate(gt_sed):
        nb_src_gt_list[frame_cnt] = int(np.sum(sed_frame))
        nb_src_pred_list[frame_cnt] = int(np.sum(pred_sed[frame_cnt]))
        if nb_src_gt_list[frame_cnt] == nb_src_pred_list[frame_cnt]:
            good_frame_cnt = good_frame_cnt + 1
        if nb_src_gt_list[frame_cnt] and nb_src_pred_list[frame_cnt]:
            sed_frame_gt = gt_sed[frame_cnt]
            gt_azi = gt_doa_rad[frame_cnt][:nb_sed][sed_frame_gt == 1]
            gt_ele = gt_doa_rad[frame_cnt][nb_sed:][sed_frame_gt == 1]
            sed_frame_pred = pred_sed[frame_cnt]
            pr_azi = pred_doa_rad[frame_cnt][:nb_sed][sed_frame_pred == 1]
            pr_ele = pred_doa_rad[frame_cnt][nb_sed:][sed_frame_pred == 1]
            doa_loss_pred += ref2019_gt_pred(np.vstack((gt_azi, gt_ele)).T, np.vstack((pr_azi, pr_ele)).T)
    doa_loss_pred_cnt = np.sum(nb_src_pred_list)
    if doa_loss_pred_cnt:
        doa_loss_pred /= doa_loss_pred_cnt
    return doa_loss_pred, good_frame_cnt / float(gt_sed.shape[0])


def ref2020_segment_labels(sed, doa, nb_label_frames_1s):
    """segment_labels: block -> class -> [[frame indices], [DOA per frame]] (one instance)."""
    max_frames = sed.shape[0]
    nb_blocks = int(np.ceil(max_frames / float(nb_label_frames_1s)))
    output_dict = {x: {} for x in range(nb_blocks)}
    for frame_cnt in range(0, max_frames, nb_label_frames_1s):
        block_cnt = frame_cnt // nb_label_frames_1s
        loc_dict = {}
        for audio_frame in range(frame_cnt, frame_cnt + nb_label_frames_1s):
            if audio_frame >= max_frames:
                continue
            for value in np.flatnonzero(sed[audio_frame]):
                loc_dict.setdefault(value, {})[audio_frame - frame_cnt] = doa[audio_frame, value]
        for class_cnt in loc_dict:
            frames = list(loc_dict[class_cnt].keys())
            output_dict[block_cnt][class_cnt] = [[frames, [[loc_dict[class_cnt][f]] for f in frames]]]
    return output_dict


def ref2020_seld(pred, gt, nb_classes, spatial_T, dist_fn):
    """update_seld_scores (one track per class) + compute_seld_scores -> ER, F, DE, DE_F."""
    TP = FP = FN = S = D = I = Nref = Nsys = 0
    total_DE, DE_TP = 0, 0
    for block_cnt in range(len(gt.keys())):
        loc_FN, loc_FP = 0, 0
        for class_cnt in range(nb_classes):
            if class_cnt in gt[block_cnt]:
                Nref += 1
            if class_cnt in pred[block_cnt]:
                Nsys += 1
            if class_cnt in gt[block_cnt] and class_cnt in pred[block_cnt]:
                gt_list = np.squeeze(np.array(gt[block_cnt][class_cnt][0][1]), 1)
                pred_list = np.squeeze(np.array(pred[block_cnt][class_cnt][0][1]), 1)
                total_spatial_dist, total_framewise_matching_doa = 0, 0
                gt_ind_list = gt[block_cnt][class_cnt][0][0]
                pred_ind_list = pred[block_cnt][class_cnt][0][0]
                for gt_ind, gt_val in enumerate(gt_ind_list):
                    if gt_val in pred_ind_list:
                        total_framewise_matching_doa += 1
                        pred_ind = pred_ind_list.index(gt_val)
                        total_spatial_dist += dist_fn(gt_list[gt_ind], pred_list[pred_ind])
                if total_spatial_dist == 0 and total_framewise_matching_doa == 0:
                    loc_FN += 1
                    FN += 1
                else:
                    avg_spatial_dist = total_spatial_dist / total_framewise_matching_doa
                    total_DE += avg_spatial_dist
                    DE_TP += 1
                    if avg_spatial_dist <= spatial_T:
                        TP += 1
                    else:
                        loc_FN += 1
                        FN += 1
            elif class_cnt in gt[block_cnt]:
                loc_FN += 1
                FN += 1
            elif class_cnt in pred[block_cnt]:
                loc_FP += 1
                FP += 1
        S += np.minimum(loc_FP, loc_FN)
        D += np.maximum(0, loc_FN - loc_FP)
        I += np.maximum(0, loc_FP - loc_FN)
    ER = (S + D + I) / float(Nref + EPS)
    prec, recall = float(TP) / float(Nsys + EPS), float(TP) / float(Nref + EPS)
    F = 2 * prec * recall / (prec + recall + EPS)
    DE = total_DE / float(DE_TP + EPS) if DE_TP else 180
    DE_prec, DE_recall = float(DE_TP) / float(Nsys + EPS), float(DE_TP) / float(Nref + EPS)
    DE_F = 2 * DE_prec * DE_recall / (DE_prec + DE_recall + EPS)
    return ER, F, DE, DE_F


def ref2020_polar(gt_azel_deg, pred_azel_deg):
    """update_seld_scores: degrees -> radians, then the clipped-arccos spherical distance."""
    g, p = np.asarray(gt_azel_deg) * np.pi / 180, np.asarray(pred_azel_deg) * np.pi / 180
    return ref2019_sph_dist(g[0], g[1], p[0], p[1])


def ref2020_cartesian(g, p):
    """distance_between_cartesian_coordinates (update_seld_scores_xyz)."""
    dist = np.sqrt((g[0] - p[0]) ** 2 + (g[1] - p[1]) ** 2 + (g[2] - p[2]) ** 2)
    dist = np.clip(dist, -1, 1)
    return 2 * np.arcsin(dist / 2.0) * 180 / np.pi


def ref_net_paper(pred, gt, gt_sed):
    """compute_doa_scores_regr_xyz's doa_loss_gt (class-paired raw chords), then seld.py's
    2 arcsin(mean / 2) in degrees. pred, gt: (frames, 3K) = [x | y | z]."""
    nb_sed, loss, cnt = gt_sed.shape[-1], 0.0, 0
    for frame_cnt, sed_frame in enumerate(gt_sed):
        g = [gt[frame_cnt][i * nb_sed:(i + 1) * nb_sed][sed_frame == 1] for i in range(3)]
        p = [pred[frame_cnt][i * nb_sed:(i + 1) * nb_sed][sed_frame == 1] for i in range(3)]
        for c in range(int(np.sum(sed_frame))):
            loss += np.sqrt(sum((g[i][c] - p[i][c]) ** 2 for i in range(3)))
            cnt += 1
    loss /= cnt
    return 2 * np.arcsin(loss / 2.0) * 180 / np.pi


def random_scene(seed, n_frames=None, fps=10, K=4, p_active=0.35):
    """Random activity and DOAs (azimuth, elevation in degrees) for reference and prediction:
    some classes flipped, some directions near the truth and some far."""
    rng = np.random.default_rng(seed)
    n_frames = n_frames or int(rng.integers(3, 8)) * fps + int(rng.integers(0, fps))
    ref = rng.random((n_frames, K)) < p_active
    pred = ref ^ (rng.random(ref.shape) < 0.15)
    az_r, el_r = rng.uniform(-180, 180, (n_frames, K)), rng.uniform(-60, 60, (n_frames, K))
    near = rng.random((n_frames, K)) < 0.6
    az_p = np.where(near, az_r + rng.normal(0, 12, az_r.shape), rng.uniform(-180, 180, az_r.shape))
    el_p = np.clip(np.where(near, el_r + rng.normal(0, 8, el_r.shape), rng.uniform(-60, 60, el_r.shape)), -89, 89)
    az_p = (az_p + 180) % 360 - 180
    return pred, ref, (az_p, el_p), (az_r, el_r), fps, K


@pytest.mark.parametrize("seed", range(8))
def test_sed_scores_with_dcase2019_blocks_equal_the_2019_reference(seed):
    pred, ref, _, _, fps, _ = random_scene(200 + seed)
    ours = sed_scores(pred, ref, fps, dcase2019_blocks=True)
    er, f = ref2019_sed(pred.astype(float), ref.astype(float), fps)
    assert abs(ours["error_rate"] - er) < 1e-12 and abs(ours["f1"] - f) < 1e-12


def test_dcase2019_blocks_drop_the_last_frame_of_each_second():
    # one event in the last frame of second 0 only: sed_eval sees it, DCASE2019 does not
    ref = np.zeros((10, 1), bool)
    ref[4] = True
    ref[7] = True  # and one inside second 1, so that N_ref > 0 in both
    pred = np.zeros_like(ref)
    pred[7] = True
    assert sed_scores(pred, ref, 5)["error_rate"] == pytest.approx(0.5)  # second 0 deleted
    assert sed_scores(pred, ref, 5, dcase2019_blocks=True)["error_rate"] == 0.0
    assert ref2019_sed(pred.astype(float), ref.astype(float), 5)[0] == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_doa_scores_dcase2019_equal_compute_doa_scores_regr(seed):
    pred, ref, (az_p, el_p), (az_r, el_r), _, _ = random_scene(300 + seed)
    ours = doa_scores_dcase2019(pred, direction_to_unit(az_p, el_p), ref, direction_to_unit(az_r, el_r))
    doa, fr = ref2019_doa(np.radians(np.hstack([az_p, el_p])), np.radians(np.hstack([az_r, el_r])),
                          pred.astype(int), ref.astype(int))
    assert abs(ours["doa_error"] - doa) < 1e-12 and abs(ours["frame_recall"] - fr) < 1e-12
    # the chapter's variant divides the same sum by the matched pairs instead
    mine = doa_scores(pred, direction_to_unit(az_p, el_p), ref, direction_to_unit(az_r, el_r))
    assert mine["doa_error"] * mine["n_pairs"] == pytest.approx(ours["doa_error"] * ours["n_pred"], rel=1e-12)


def test_doa_scores_dcase2019_extras_count_in_the_denominator_and_misses_do_not():
    u = direction_to_unit([0.0, 90.0, 30.0], [0.0, 0.0, 0.0])
    ref_sed = np.array([[1, 0, 0], [1, 1, 0]], bool)
    ref_doa = np.zeros((2, 3, 3))
    ref_doa[0, 0] = u[0]
    ref_doa[1, :2] = u[:2]
    # frame 0: the right source 30 deg off plus an extra -> 30 deg over 2 predicted DOAs;
    # frame 1: one of two sources found exactly, the other missed -> 0 deg over 1 DOA
    pred_sed = np.array([[1, 1, 0], [1, 0, 0]], bool)
    pred_doa = np.zeros((2, 3, 3))
    pred_doa[0, :2] = [u[2], u[1]]
    pred_doa[1, 0] = u[0]
    s = doa_scores_dcase2019(pred_sed, pred_doa, ref_sed, ref_doa)
    assert s["doa_error"] == pytest.approx(30.0 / 3) and s["n_pred"] == 3
    assert s["frame_recall"] == 0.0
    assert doa_scores(pred_sed, pred_doa, ref_sed, ref_doa)["doa_error"] == pytest.approx(30.0 / 2)
    assert doa_scores_dcase2019(np.zeros((2, 3)), pred_doa, ref_sed, ref_doa)["doa_error"] == 0.0


def _ref2020(pred, ref, doa_p, doa_r, fps, K, threshold, dist_fn):
    return ref2020_seld(ref2020_segment_labels(pred, doa_p, fps), ref2020_segment_labels(ref, doa_r, fps),
                        K, threshold, dist_fn)


@pytest.mark.parametrize("seed", range(8))
def test_location_aware_scores_equal_update_seld_scores(seed):
    pred, ref, (az_p, el_p), (az_r, el_r), fps, K = random_scene(400 + seed)
    threshold = [20.0, 10.0, 45.0, 20.0][seed % 4]
    ours = location_aware_scores(pred, direction_to_unit(az_p, el_p), ref, direction_to_unit(az_r, el_r),
                                 fps, threshold_deg=threshold)
    azel_p, azel_r = np.stack([az_p, el_p], -1), np.stack([az_r, el_r], -1)
    er, f, de, de_f = _ref2020(pred, ref, azel_p, azel_r, fps, K, threshold, ref2020_polar)
    for key, value in (("error_rate", er), ("f1", f), ("de", de), ("de_f", de_f)):
        assert abs(ours[key] - value) < 1e-12, key


@pytest.mark.parametrize("seed", range(4))
def test_location_aware_scores_with_the_clipped_chord_equal_update_seld_scores_xyz(seed):
    pred, ref, (az_p, el_p), (az_r, el_r), fps, K = random_scene(500 + seed)
    rng = np.random.default_rng(seed)
    raw = direction_to_unit(az_p, el_p) * rng.uniform(0.5, 1.0, az_p.shape + (1,))  # shrunk outputs
    unit = direction_to_unit(az_r, el_r)
    ours = location_aware_scores(pred, raw, ref, unit, fps, distance="dcase2020_chord")
    er, f, de, de_f = _ref2020(pred, ref, raw, unit, fps, K, 20.0, ref2020_cartesian)
    for key, value in (("error_rate", er), ("f1", f), ("de", de), ("de_f", de_f)):
        assert abs(ours[key] - value) < 1e-12, key
    assert ours["de"] <= 60.0 + 1e-12  # the clip caps every error at 60 degrees


def test_clipped_chord_caps_opposite_directions_at_60_degrees():
    u, v = direction_to_unit(0.0, 0.0), direction_to_unit(180.0, 0.0)
    assert chord_angle_clipped(u, v) == pytest.approx(60.0)
    assert ref2020_cartesian(u, v) == pytest.approx(60.0)
    assert chord_angle_clipped(u, direction_to_unit(40.0, 0.0)) == pytest.approx(40.0)


def test_location_aware_threshold_far_detection_and_no_shared_frame_by_hand():
    fps, K = 2, 3
    ref_sed = np.zeros((4, K), bool)
    ref_sed[:2, 0] = True  # segment 0: class 0, predicted exactly 20 deg off (threshold: a TP)
    ref_sed[2:, 1] = True  # segment 1: class 1, predicted 60 deg off (a FN only)
    ref_sed[2, 2] = True  # segment 1: class 2 in frame 2, predicted only in frame 3 (no shared frame)
    pred_sed = ref_sed.copy()
    pred_sed[2, 2], pred_sed[3, 2] = False, True
    pred_sed[0, 1] = True  # segment 0: an extra class 1 (a FP)
    ref_doa = np.zeros((4, K, 3))
    ref_doa[:, :] = direction_to_unit(0.0, 0.0)
    pred_doa = ref_doa.copy()
    pred_doa[:2, 0] = direction_to_unit(20.0, 0.0)
    pred_doa[2:, 1] = direction_to_unit(60.0, 0.0)
    s = location_aware_scores(pred_sed, pred_doa, ref_sed, ref_doa, fps)
    # N_ref 3, N_sys 4; TP 1; FN: far detection + no shared frame = 2; FP: the extra = 1
    assert (s["TP"], s["FN"], s["FP"], s["n_ref"], s["n_sys"]) == (1, 2, 1, 3, 4)
    # segment 0: FP 1, FN 0 -> I 1; segment 1: FN 2, FP 0 -> D 2; ER = 3 / 3
    assert (s["S"], s["D"], s["I"]) == (0, 2, 1) and s["error_rate"] == pytest.approx(1.0)
    P, R = 1 / 4, 1 / 3
    assert s["f1"] == pytest.approx(2 * P * R / (P + R))
    assert s["de"] == pytest.approx(40.0)  # mean of 20 and 60; the unshared class adds nothing
    assert s["de_f"] == pytest.approx(2 * (2 / 4) * (2 / 3) / (2 / 4 + 2 / 3))
    just_below = location_aware_scores(pred_sed, pred_doa, ref_sed, ref_doa, fps, threshold_deg=19.999)
    assert just_below["TP"] == 0 and just_below["FN"] == 3


@pytest.mark.parametrize("seed", range(4))
def test_paper_doa_error_equals_the_seld_net_transcription_on_raw_outputs(seed):
    pred, ref, (az_p, el_p), (az_r, el_r), _, K = random_scene(600 + seed)
    rng = np.random.default_rng(seed)
    raw = direction_to_unit(az_p, el_p) * rng.uniform(0.3, 1.0, az_p.shape + (1,))
    unit = direction_to_unit(az_r, el_r)
    ours = paper_doa_error(raw, ref, unit)
    flat = lambda a: np.concatenate([a[..., 0], a[..., 1], a[..., 2]], axis=1)  # noqa: E731
    assert abs(ours["paper"] - ref_net_paper(flat(raw), flat(unit), ref.astype(int))) < 1e-12


def test_paper_doa_error_scores_a_shrunk_correct_direction_as_wrong():
    # a correct direction shrunk to length 0.6: raw chord 0.4 -> 2 asin(0.2) = 23.07 deg; angle 0
    ref_doa = direction_to_unit(30.0, 10.0)[None, None, :]
    s = paper_doa_error(0.6 * ref_doa, np.ones((1, 1), bool), ref_doa)
    assert s["paper"] == pytest.approx(np.degrees(2 * np.arcsin(0.2)))
    assert s["angular"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: doa_scores(np.full((4, 2), 0.7), np.zeros((4, 2, 3)), np.ones((4, 2)), np.zeros((4, 2, 3))), "0.7"),
        (lambda: location_aware_scores(np.ones((4, 2)), np.zeros((4, 2, 3)), np.full((4, 2), 0.3),
                                       np.zeros((4, 2, 3)), 2), "0.3"),
        (lambda: doa_scores_dcase2019(np.ones((4, 2)), np.full((4, 2, 3), np.nan), np.ones((4, 2)),
                                      np.zeros((4, 2, 3))), "non-finite value nan"),
        (lambda: location_aware_scores(np.ones((4, 2)), np.zeros((4, 2, 3)), np.ones((4, 2)),
                                       np.full((4, 2, 3), np.inf), 2), "non-finite value inf"),
        (lambda: location_aware_scores(np.ones((3, 2)), np.zeros((3, 2, 3)), np.ones((4, 2)),
                                       np.zeros((4, 2, 3)), 2), "3 frames but ref has 4"),
        (lambda: doa_scores_dcase2019(np.ones((3, 2)), np.zeros((3, 2, 3)), np.ones((4, 2)),
                                      np.zeros((4, 2, 3))), "3 frames but ref has 4"),
        (lambda: paper_doa_error(np.full((4, 2, 3), np.nan), np.ones((4, 2)), np.zeros((4, 2, 3))), "nan"),
        (lambda: location_aware_scores(np.ones((4, 2)), np.zeros((4, 2, 3)), np.ones((4, 2)),
                                       np.zeros((4, 2, 3)), 2, distance="chord"), "distance must be"),
        (lambda: sed_scores(np.ones((4, 2)), np.ones((4, 2)), 1, dcase2019_blocks=True), "drop_last_frame"),
    ],
)
def test_bad_metric_input_names_the_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()
