"""MUSIC on FOA: plane waves of known direction, two sources at once, and refusals."""

import numpy as np
import pytest

from companion.seld.foa import angular_distance, direction_to_unit, foa_encode
from companion.seld.music import (
    direction_grid, foa_covariances, frame_directions, mdl_counts, mdl_order, steering,
)
from companion.seld.scenes import Event, SceneConfig, frame_labels, render_scene

FS = 6400


def noisy_plane_waves(directions, seconds=1.0, snr_db=30.0, seed=0):
    """Independent white noises from ``directions`` (deg pairs) plus SN3D diffuse noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FS)
    audio = sum(foa_encode(rng.standard_normal(n), az, el) for az, el in directions)
    noise = rng.standard_normal((4, n)) * np.array([1.0, 3**-0.5, 3**-0.5, 3**-0.5])[:, None]
    return audio + noise * 10 ** (-snr_db / 20)


@pytest.mark.parametrize("az, el", [(37.3, 12.6), (-123.4, -41.8), (171.5, 48.2), (0.0, 0.0)])
def test_one_plane_wave_is_found_within_a_degree(az, el):
    audio = noisy_plane_waves([(az, el)])
    T = audio.shape[1] // 128
    active, found = frame_directions(audio, np.ones(T, dtype=int))
    err = angular_distance(found[2:-2, 0], direction_to_unit(az, el))  # frames with full windows
    assert active[:, 0].all() and err.max() < 1.0  # the refinement grid is 1 degree


def test_two_simultaneous_sources_are_separated():
    dirs = [(60.0, 20.0), (-90.0, -20.0)]
    audio = noisy_plane_waves(dirs, seed=1)
    T = audio.shape[1] // 128
    _, found = frame_directions(audio, np.full(T, 2))
    refs = direction_to_unit(*np.array(dirs).T)
    for t in range(2, T - 2):
        err = angular_distance(found[t][:, None], refs[None])  # (found, ref)
        assert min(err[0, 0] + err[1, 1], err[0, 1] + err[1, 0]) < 3.0, t


def test_two_scene_events_are_separated_where_the_intensity_vector_fails():
    # the chapter's sound classes, not white noise: the summed intensity points between them
    config = SceneConfig(clip_seconds=1.0, snr_db=30.0)
    pair = [Event(0, 0.0, 1.0, 60.0, 20.0), Event(5, 0.0, 1.0, -90.0, -20.0)]
    audio = render_scene(pair, config, 1)
    sed, _ = frame_labels(pair, config)
    _, found = frame_directions(audio, sed.sum(axis=1))
    refs = direction_to_unit(np.array([60.0, -90.0]), np.array([20.0, -20.0]))
    worst = max(float(min(angular_distance(r, f) for f in found[t])) for t in range(5, 45) for r in refs)
    assert worst < 5.0


def test_diffuse_noise_is_white_after_the_n3d_scaling():
    rng = np.random.default_rng(2)
    u = direction_to_unit(rng.uniform(-180, 180, 400), np.degrees(np.arcsin(rng.uniform(-1, 1, 400))))
    diffuse = sum(foa_encode(rng.standard_normal(FS), *np.degrees(
        [np.arctan2(v[1], v[0]), np.arcsin(v[2])])) for v in u)
    R, _ = foa_covariances(diffuse)
    mean = R.mean(axis=(0, 1))
    np.testing.assert_allclose(mean / np.real(np.trace(mean)) * 4, np.eye(4), atol=0.1)


def test_steering_vectors_have_equal_norm_and_the_grid_covers_the_sphere():
    grid = direction_grid(10.0)
    assert np.allclose(np.linalg.norm(steering(grid), axis=1), 2.0)  # 1 + 3 |u|^2 = 4
    probe = direction_to_unit(np.random.default_rng(3).uniform(-180, 180, 50), 0.0)
    nearest = np.max(probe @ grid.T, axis=1)
    assert np.all(np.degrees(np.arccos(np.clip(nearest, -1, 1))) <= 7.1)  # half a 10 deg diagonal


def test_music_refuses_too_many_sources_and_bad_audio():
    audio = noisy_plane_waves([(0.0, 0.0)], seconds=0.2)
    T = audio.shape[1] // 128
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        frame_directions(audio, np.full(T, 4))
    with pytest.raises(ValueError, match="one count"):
        frame_directions(audio, np.ones(T + 1, dtype=int))
    with pytest.raises(ValueError, match="shape \\(4, n\\)"):
        frame_directions(audio[:3], np.ones(T, dtype=int))


def test_mdl_order_on_hand_made_eigenvalues():
    # equal eigenvalues are white noise; one, two, three that stand out are that many signals
    assert mdl_order([1.0, 1.0, 1.0, 1.0], 200) == 0
    assert mdl_order([50.0, 1.0, 1.01, 0.99], 200) == 1
    assert mdl_order([50.0, 20.0, 1.0, 1.02], 200) == 2
    assert mdl_order([50.0, 20.0, 8.0, 1.0], 200) == 3
    # the order of the eigenvalues does not matter; max_order caps the answer
    assert mdl_order([1.0, 20.0, 8.0, 50.0], 200) == 3 and mdl_order([50.0, 20.0, 8.0, 1.0], 200, 2) == 2
    # a spread the snapshots cannot tell from noise is no signal: with 3 snapshots a 2:1 spread is noise
    assert mdl_order([2.0, 1.0, 1.0, 1.0], 3) == 0 and mdl_order([2.0, 1.0, 1.0, 1.0], 10_000) == 1


def test_mdl_order_agrees_with_the_textbook_criterion_on_random_spectra():
    # Wax & Kailath (1985), the MDL criterion with the complex-data penalty, written out per k
    rng = np.random.default_rng(3)
    lams = rng.exponential(1.0, (200, 4)) ** 3
    N = 96.0
    for lam in lams:
        lam = np.sort(lam)[::-1]
        mdl = [-N * (4 - k) * np.log(np.prod(lam[k:]) ** (1 / (4 - k)) / np.mean(lam[k:]))
               + 0.5 * k * (8 - k) * np.log(N) for k in range(4)]
        assert mdl_order(lam, N) == int(np.argmin(mdl))


def test_mdl_counts_the_plane_waves_of_synthetic_audio():
    for dirs in ([], [(37.0, 10.0)], [(60.0, 20.0), (-90.0, -20.0)], [(60.0, 20.0), (-90.0, -20.0), (150.0, 45.0)]):
        counts = mdl_counts(noisy_plane_waves(dirs, seed=len(dirs)))
        assert np.mean(counts[2:-2] == len(dirs)) > 0.9, (dirs, np.bincount(counts))


@pytest.mark.parametrize("kwargs, match", [
    ({"eigenvalues": [1.0, 1.0], "n_snapshots": 10, "max_order": 2}, "max_order"),
    ({"eigenvalues": [1.0, 1.0, 1.0], "n_snapshots": 1.0, "max_order": 1}, "n_snapshots"),
    ({"eigenvalues": [1.0, np.nan, 1.0, 1.0], "n_snapshots": 10}, "finite"),
])
def test_mdl_order_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mdl_order(**kwargs)
