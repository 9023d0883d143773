"""FOA encoding, directions, and the label-versus-audio check across the whole grid."""

import numpy as np
import pytest

from companion.seld.baseline import frame_directions, intensity_vectors
from companion.seld.foa import (
    AZIMUTHS_DEG,
    ELEVATIONS_DEG,
    angular_distance,
    direction_to_unit,
    foa_encode,
    foa_gains,
    foa_gains_of_unit,
    unit_to_direction,
)
from companion.seld.scenes import Event, SceneConfig, frame_labels, render_scene


@pytest.mark.parametrize(
    "az, el, gains",
    [
        (0, 0, [1, 0, 0, 1]),  # front: W and X
        (90, 0, [1, 1, 0, 0]),  # left (counter-clockwise): Y
        (180, 0, [1, 0, 0, -1]),  # behind: X negative
        (-90, 0, [1, -1, 0, 0]),  # right
        (0, 90, [1, 0, 1, 0]),  # above: Z
    ],
)
def test_cardinal_directions_have_the_acn_sn3d_gains(az, el, gains):
    np.testing.assert_allclose(foa_gains(az, el), gains, atol=1e-12)


def test_plane_wave_dipoles_carry_the_omni_energy():
    # SN3D: Y^2 + Z^2 + X^2 = W^2 for any single plane wave
    rng = np.random.default_rng(0)
    s = rng.standard_normal(64)
    foa = foa_encode(s, 37.0, -21.0)
    assert foa.shape == (4, 64)
    np.testing.assert_allclose((foa[1:] ** 2).sum(axis=0), foa[0] ** 2, rtol=1e-12)


def test_moving_source_uses_one_direction_per_sample():
    s = np.ones(3)
    foa = foa_encode(s, np.array([0.0, 90.0, 180.0]), np.zeros(3))
    np.testing.assert_allclose(foa[3], [1, 0, -1], atol=1e-12)  # X follows the source
    np.testing.assert_allclose(foa[1], [0, 1, 0], atol=1e-12)


def test_direction_round_trip_and_angles():
    az, el = np.meshgrid(AZIMUTHS_DEG, ELEVATIONS_DEG)
    u = direction_to_unit(az, el)
    az2, el2 = unit_to_direction(u)
    np.testing.assert_allclose(el2, el, atol=1e-9)
    np.testing.assert_allclose(np.cos(np.radians(az2 - az)), 1.0, atol=1e-12)
    assert angular_distance([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert angular_distance([1, 0, 0], [2, 0, 0]) == pytest.approx(0.0)
    assert angular_distance([1, 0, 0], [-1, 0, 0]) == pytest.approx(180.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: foa_encode(np.ones((2, 5)), 0, 0), "mono"),
        (lambda: foa_encode(np.ones(5), 200.0, 0), "azimuth 200"),
        (lambda: foa_encode(np.ones(5), 0, -95.0), "elevation -95"),
        (lambda: foa_encode(np.ones(5), np.zeros(4), 0), "one value per sample"),
        (lambda: unit_to_direction(np.ones(2)), "last axis of 3"),
    ],
)
def test_bad_input_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_intensity_direction_matches_the_label_across_the_whole_grid():
    # The bug this guards against: labels and audio that disagree silently (a swapped
    # channel, a sign, degrees vs radians). One scene visits every grid direction in turn
    # (0.1 s each) through the renderer and the labeller; in every event's frames the
    # intensity vector of the audio must point at the frames' label.
    grid = [(float(az), float(el)) for az in AZIMUTHS_DEG for el in ELEVATIONS_DEG]
    step = 0.1
    config = SceneConfig(clip_seconds=step * len(grid), snr_db=30.0)
    events = [Event(i % config.n_classes, i * step, (i + 1) * step, az, el) for i, (az, el) in enumerate(grid)]
    audio = render_scene(events, config, 0)
    sed, doa = frame_labels(events, config)
    inten = intensity_vectors(audio).sum(axis=1)  # (T, 3), summed over frequency
    frames_per_event = int(round(step * config.frames_per_second))
    assert np.all(sed.sum(axis=1) == 1)  # exactly one source in every frame
    label = doa[sed].reshape(len(grid), frames_per_event, 3)  # (events, frames, 3)
    found = inten.reshape(len(grid), frames_per_event, 3).sum(axis=1)
    assert np.all(np.abs(np.diff(label, axis=1)) < 1e-6)  # one label per event
    error = angular_distance(found, label[:, 0])
    assert error.max() < 1.0, f"intensity direction is {error.max():.2f} deg from the label at {grid[int(error.argmax())]}"
    # and the labels are the grid directions themselves
    np.testing.assert_allclose(label[:, 0], direction_to_unit(*np.array(grid).T), atol=1e-6)


def test_frame_directions_separates_two_simultaneous_sources():
    config = SceneConfig(clip_seconds=1.0, snr_db=40.0)
    events = [Event(0, 0.0, 1.0, 60.0, 20.0), Event(5, 0.0, 1.0, -120.0, -30.0)]
    audio = render_scene(events, config, 3)
    sed, doa = frame_labels(events, config)
    active, found = frame_directions(audio, sed.sum(axis=1))
    assert active.shape == (config.n_frames, 2) and active[5:-5].all()
    # each reference direction is within 5 deg of one of the two found directions, mid-clip
    t = config.n_frames // 2
    for ref in doa[t, sed[t]]:
        assert min(angular_distance(ref, f) for f in found[t]) < 5.0
    with pytest.raises(ValueError, match="one non-negative count per frame"):
        frame_directions(audio, np.ones(3, dtype=int))


def test_gains_of_unit_vectors_are_the_spherical_harmonics_of_their_angles():
    # the image-source rooms encode vectors directly; they must get the SN3D harmonics of the
    # vectors' angles, written out here from the definitions
    v = np.random.default_rng(4).normal(size=(50, 3))
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    az, el = np.arctan2(u[:, 1], u[:, 0]), np.arcsin(u[:, 2])
    expected = np.stack([np.ones(50), np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)], axis=1)
    np.testing.assert_allclose(foa_gains_of_unit(u), expected, atol=1e-12)
    with pytest.raises(ValueError, match="last axis of 3"):
        foa_gains_of_unit(np.ones((5, 2)))
