"""MUSIC on FOA: plane waves of known direction, two sources at once, and refusals."""

import numpy as np
import pytest

from companion.seld.foa import angular_distance, direction_to_unit, foa_encode
from companion.seld.music import direction_grid, foa_covariances, frame_directions, steering
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
