"""Metrics: hand-computed values, peers (torchmetrics; netcal's binning re-derived from its source),
bin edges, and bad input."""

import numpy as np
import pytest
import torch
from scipy.stats import binned_statistic_dd
from netcal.metrics import ECE as NetcalECE
from torchmetrics.functional.classification import multiclass_calibration_error
from torchmetrics.functional.classification.calibration_error import _ce_compute

from companion.calibration import (adaptive_ece, brier, classwise_ece, ece, expected_kl, mce, nll,
                                   prepare_reliability_diagram)


def random_probs(n, k, seed, sharp=3.0):
    rng = np.random.default_rng(seed)
    z = sharp * rng.standard_normal((n, k))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    # labels drawn from a tempered version so the model is miscalibrated but not hopeless
    q = p ** 0.5 / (p ** 0.5).sum(axis=1, keepdims=True)
    y = (q.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return p, y


def torchmetrics_ece(p, y, n_bins=15, norm="l1"):
    """The public API. NB: torchmetrics 1.9 casts confidences to float32 before binning, so it
    agrees with a float64 computation to about 1e-7, not 1e-9."""
    return float(multiclass_calibration_error(torch.as_tensor(p), torch.as_tensor(y),
                                              num_classes=p.shape[1], n_bins=n_bins, norm=norm))


def torchmetrics_ece_float64(p, y, n_bins=15, norm="l1"):
    """torchmetrics' own binning and reduction (``_ce_compute``) fed float64 confidences, i.e. the
    public function minus its float32 cast."""
    conf = torch.as_tensor(p.max(axis=1))
    acc = torch.as_tensor((p.argmax(axis=1) == y).astype(np.float64))
    return float(_ce_compute(conf, acc, n_bins, norm=norm))


def netcal_style_ece(p, y, n_bins=15):
    """netcal 1.4 ECE as its source does it (metrics/Miscalibration.py): clip X to (eps, 1-eps),
    top-label confidence and match, scipy ``binned_statistic_dd`` over ``linspace(0, 1, B + 1)``
    (bins [lo, hi), the last one closed), ECE = sum_b N_b / N |acc_b - conf_b|."""
    eps = np.finfo(p.dtype).eps
    p = np.clip(p, eps, 1 - eps)
    conf, matched = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = [np.linspace(0, 1, n_bins + 1)]
    acc = binned_statistic_dd(conf[:, None], matched, "mean", bins=edges).statistic
    cb = binned_statistic_dd(conf[:, None], conf, "mean", bins=edges).statistic
    cnt = binned_statistic_dd(conf[:, None], conf, "count", bins=edges).statistic
    full = cnt > 0
    return float(np.sum(cnt[full] / len(y) * np.abs(acc[full] - cb[full])))


def test_ece_by_hand():
    # bin 13 of 15 ([0.8667, 0.9333)): conf 0.9, wrong -> gap 0.9; bin 12: conf 0.8, wrong -> 0.8
    assert ece([[0.9, 0.1], [0.2, 0.8]], [1, 0]) == pytest.approx(0.85, abs=1e-12)
    # the doctest case: both in different bins, one right (gap .1), one wrong (gap .8)
    assert ece([[0.9, 0.1], [0.2, 0.8]], [0, 0], n_bins=10) == pytest.approx(0.45, abs=1e-12)


@pytest.mark.parametrize("k,seed", [(2, 0), (10, 1), (100, 2)])
def test_ece_and_mce_equal_torchmetrics(k, seed):
    p, y = random_probs(5000, k, seed)
    assert p.max() < 1.0
    assert ece(p, y, 15) == pytest.approx(torchmetrics_ece_float64(p, y), abs=1e-9)
    assert mce(p, y, 15) == pytest.approx(torchmetrics_ece_float64(p, y, norm="max"), abs=1e-9)
    assert ece(p, y, 7) == pytest.approx(torchmetrics_ece_float64(p, y, 7), abs=1e-9)
    # the public function, float32 inside
    assert ece(p, y, 15) == pytest.approx(torchmetrics_ece(p, y), abs=1e-6)
    assert mce(p, y, 15) == pytest.approx(torchmetrics_ece(p, y, norm="max"), abs=1e-6)


@pytest.mark.parametrize("k,seed", [(3, 3), (10, 4)])
def test_ece_equals_netcal_binning(k, seed):
    p, y = random_probs(4000, k, seed)
    assert ece(p, y, 15) == pytest.approx(netcal_style_ece(p, y, 15), abs=1e-9)


@pytest.mark.parametrize("k,seed", [(3, 3), (10, 4), (100, 2)])
def test_ece_equals_installed_netcal(k, seed):
    """The peer itself. netcal reads a two-column input as a binary problem (the calibration of
    p(y = 1), not of the top label), so the comparison starts at three classes."""
    p, y = random_probs(4000, k, seed)
    assert ece(p, y, 15) == pytest.approx(float(NetcalECE(bins=15).measure(p, y)), abs=1e-9)
    assert netcal_style_ece(p, y, 15) == pytest.approx(float(NetcalECE(bins=15).measure(p, y)), abs=1e-9)


def test_confidence_exactly_one_goes_to_last_bin():
    # a confident mistake at 1.0 and a correct 0.95 share our last bin:
    # |(0 - 1) + (1 - 0.95)| / 2 = 0.475
    p = np.array([[1.0, 0.0], [0.95, 0.05]])
    y = np.array([1, 0])
    assert ece(p, y) == pytest.approx(0.475, abs=1e-12)
    # netcal clips 1.0 to 1 - eps and agrees with us (three columns: netcal's top-label path)
    assert netcal_style_ece(p, y) == pytest.approx(0.475, abs=1e-12)
    # the installed netcal needs three classes among the labels to take its top-label path:
    # add a correct 1.0 of class 2; the last bin then holds acc 2/3, mean confidence 2.95/3
    p3 = np.array([[1.0, 0.0, 0.0], [0.95, 0.05, 0.0], [0.0, 0.0, 1.0]])
    y3 = np.array([1, 0, 2])
    assert ece(p3, y3) == pytest.approx(0.95 / 3, abs=1e-12)
    assert float(NetcalECE(bins=15).measure(p3, y3)) == pytest.approx(0.95 / 3, abs=1e-9)
    # torchmetrics (<= 1.9, bucketize right=True) puts 1.0 in a phantom 16th bin:
    # |0 - 1| / 2 + |1 - 0.95| / 2 = 0.525 -- the documented difference, pinned here
    assert torchmetrics_ece_float64(p, y) == pytest.approx(0.525, abs=1e-12)
    assert torchmetrics_ece(p, y) == pytest.approx(0.525, abs=1e-6)


def test_confidence_on_interior_edge_matches_torchmetrics():
    # 0.6 = 9/15 sits on an edge; both put it in bin 9 ([0.6, 0.667))
    p = np.array([[0.6, 0.4], [0.65, 0.35], [0.3, 0.7]])
    y = np.array([1, 0, 1])
    assert ece(p, y) == pytest.approx(torchmetrics_ece_float64(p, y), abs=1e-12)


def test_reliability_diagram_agrees_with_ece():
    p, y = random_probs(3000, 5, 7)
    d = prepare_reliability_diagram(p, y, 15)
    assert d.count.sum() == 3000 and d.edges.shape == (16,)
    assert d.ece == pytest.approx(ece(p, y), abs=1e-12)


def test_adaptive_ece_by_hand():
    # 4 points, 2 equal-mass bins: {0.55 right, 0.6 wrong} -> |0.5 - 0.575|; {0.8 right, 0.9 right} -> 0.15
    p = np.array([[0.55, 0.45], [0.6, 0.4], [0.8, 0.2], [0.9, 0.1]])
    y = np.array([0, 1, 0, 0])
    assert adaptive_ece(p, y, n_bins=2) == pytest.approx(0.5 * 0.075 + 0.5 * 0.15, abs=1e-12)
    with pytest.raises(ValueError, match="equal-mass"):
        adaptive_ece(p, y, n_bins=5)


def test_classwise_nll_brier_kl_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    y = np.array([0, 2])
    assert nll(p, y) == pytest.approx(-(np.log(0.7) + np.log(0.3)) / 2)
    assert brier(p, y) == pytest.approx(((0.09 + 0.04 + 0.01) + (0.01 + 0.36 + 0.49)) / 2)
    # class-wise, 1 bin: |mean p_c - freq_c| averaged over classes
    expected = (abs(0.4 - 0.5) + abs(0.4 - 0.0) + abs(0.2 - 0.5)) / 3
    assert classwise_ece(p, y, n_bins=1) == pytest.approx(expected)
    q = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert expected_kl(q, p) == pytest.approx((0.5 * np.log(0.5 / 0.7) + 0.5 * np.log(0.5 / 0.2)
                                               + np.log(1 / 0.3)) / 2)
    assert expected_kl(p, p) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("probs,labels,match", [
    ([[0.5, 0.6]], [0], "sum to 1"),
    ([[np.nan, 1.0]], [0], "NaN or inf"),
    ([[np.inf, 0.0]], [0], "NaN or inf"),
    ([[2.0, -1.0]], [0], "logits"),
    ([[0.5, 0.5]], [2], r"\[0, 2\)"),
    ([[0.5, 0.5]], [-1], r"\[0, 2\)"),
    ([[0.5, 0.5], [0.5, 0.5]], [0], "shape mismatch"),
    (np.zeros((0, 2)), np.zeros(0, dtype=int), "empty"),
    ([0.5, 0.5], [0], "2-D"),
    ([[0.5, 0.5]], [0.5], "integers"),
    ([[0.5, 0.5]], [[0]], "1-D"),
])
def test_bad_input_raises_naming_the_problem(probs, labels, match):
    for metric in (ece, adaptive_ece, mce, classwise_ece, nll, brier):
        with pytest.raises(ValueError, match=match):
            metric(probs, labels)


def test_bad_n_bins_and_kl_shapes():
    with pytest.raises(ValueError, match="n_bins"):
        ece([[0.5, 0.5]], [0], n_bins=0)
    with pytest.raises(ValueError, match="shape mismatch"):
        expected_kl([[0.5, 0.5]], [[0.2, 0.3, 0.5]])


def test_float32_input_accepted_without_upcast_copy():
    p, y = random_probs(2000, 10, 9)
    p32 = p.astype(np.float32)
    p32 /= p32.sum(axis=1, keepdims=True)
    assert ece(p32, y) == pytest.approx(torchmetrics_ece(p32, y), abs=1e-6)
