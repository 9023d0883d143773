"""Within-pair Mixup training and the k-scaling experiment's helpers."""

from __future__ import annotations

import numpy as np
import pytest

from companion.calibration.k_scaling import curve_settled, pair_features, run_one
from companion.calibration.mixup import group_permutation, mix_batch
from companion.calibration.training import MLPClassifier
from companion.distributions import WarmupOverlapND


def test_group_permutation_stays_in_groups_and_permutes():
    groups = np.array([0, 1, 0, 2, 1, 0, 2, 2])
    perm = group_permutation(groups, 3)
    assert sorted(perm) == list(range(groups.size))
    np.testing.assert_array_equal(groups[perm], groups)


def test_mix_batch_with_groups_mixes_only_within_a_pair():
    dist = WarmupOverlapND(8, 0.5, dim=1)
    x, y = dist.sample(400, 0)
    onehot = np.eye(8)[y]
    xm, ym = mix_batch(x, onehot, alpha=1.0, mix_size=3, rng=1, groups=y // 2)
    # each soft target puts all its mass on the two classes of one pair ...
    pair_mass = ym.reshape(-1, 4, 2).sum(axis=2)
    assert np.allclose(pair_mass.max(axis=1), 1.0)
    # ... and the mixed input stays inside that pair's span [j * spacing, j * spacing + 2]
    j = pair_mass.argmax(axis=1)
    assert np.all((xm[:, 0] >= j * dist.spacing - 1e-9) & (xm[:, 0] <= j * dist.spacing + 2 + 1e-9))
    # without groups, some mixtures do cross pairs
    _, ym_free = mix_batch(x, onehot, alpha=1.0, mix_size=3, rng=1)
    assert np.any(ym_free.reshape(-1, 4, 2).sum(axis=2).max(axis=1) < 0.99)


def test_bad_groups_and_options_are_refused():
    x, y = WarmupOverlapND(4, 0.5, dim=1).sample(20, 0)
    with pytest.raises(ValueError, match="one id per point"):
        mix_batch(x, np.eye(4)[y], alpha=1.0, mix_size=2, rng=0, groups=y[:5])
    with pytest.raises(ValueError, match="integer group ids"):
        group_permutation(np.array([0.5, 1.0]), 0)
    with pytest.raises(ValueError, match="needs mixup_alpha"):
        MLPClassifier(4, epochs=1).fit(x, y, mix_groups=y // 2)
    with pytest.raises(ValueError, match="integer group ids"):
        MLPClassifier(4, epochs=1, mixup_alpha=1.0).fit(x, y, mix_groups=np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="lr_schedule"):
        MLPClassifier(4, epochs=1, lr_schedule="linear").fit(x, y)


def test_cosine_schedule_decays_to_zero_over_the_run():
    x, y = WarmupOverlapND(4, 0.5, dim=1).sample(100, 0)
    cosine = MLPClassifier(4, epochs=3, batch_size=30, lr_schedule="cosine", stop_loss=None).fit(x, y)
    constant = MLPClassifier(4, epochs=3, batch_size=30, stop_loss=None).fit(x, y)
    assert len(cosine.loss_history_) == 3
    assert cosine.final_lr_ == pytest.approx(0.0, abs=1e-12)
    assert constant.final_lr_ == pytest.approx(1e-3)


def test_pair_features_recover_the_first_coordinate():
    dist = WarmupOverlapND(8, 0.5, dim=3)
    x, _ = dist.sample(500, 0)
    f = pair_features(dist, x)
    assert f.shape == (500, 4 + 3)
    pair = f[:, :4].argmax(axis=1)
    np.testing.assert_allclose(pair * dist.spacing + f[:, 4], x[:, 0])
    np.testing.assert_array_equal(f[:, 5:], x[:, 1:])
    assert np.all((f[:, 4] >= 0) & (f[:, 4] <= 2))


def test_curve_settled():
    assert curve_settled([1.0] * 20) == 0.0
    assert curve_settled(list(np.linspace(2, 1, 20))) > 0.05
    with pytest.raises(ValueError, match="too short"):
        curve_settled([1.0])


def test_run_one_refuses_odd_k():
    with pytest.raises(ValueError, match="even integer"):
        run_one(3, 0, rho=0.5, erm_dim=2, erm_per_class=5, erm_epochs=1, erm_lr=1e-2, mix_per_pair=5,
                mix_epochs=1, mix_lr=1e-3, hidden=(8,), batch_size=10, alpha=1.0, n_test=10)
