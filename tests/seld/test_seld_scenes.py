"""Scenes: overlap levels, labels, seeds, the room, and refusals of bad input."""

import numpy as np
import pytest
from scipy.signal import stft

from companion.seld.foa import AZIMUTHS_DEG, ELEVATIONS_DEG, angular_distance, direction_to_unit
from companion.seld.room import ShoeboxRoom, foa_rir, image_sources
from companion.seld.scenes import Event, SceneConfig, draw_events, frame_labels, make_scene, make_scenes, render_scene
from companion.seld.sounds import CLASSES, make_sound


@pytest.mark.parametrize("overlap", [1, 2, 3])
def test_overlap_level_bounds_simultaneous_events(overlap):
    config = SceneConfig(overlap=overlap, clip_seconds=8.0)
    most = 0
    for seed in range(5):
        events = draw_events(config, seed)
        sed, _ = frame_labels(events, config)
        most = max(most, int(sed.sum(axis=1).max()))
        for e in events:  # on the paper's grid, inside the clip
            assert e.azimuth in AZIMUTHS_DEG and e.elevation in ELEVATIONS_DEG
            assert 0 <= e.onset < e.offset <= config.clip_seconds
    assert most == overlap  # reached, never exceeded


def test_labels_follow_the_events():
    config = SceneConfig(clip_seconds=2.0)
    events = [Event(2, 0.5, 1.0, 40.0, -20.0)]
    sed, doa = frame_labels(events, config)
    fps = config.frames_per_second
    assert sed.shape == (config.n_frames, config.n_classes)
    active = np.flatnonzero(sed[:, 2])
    assert active[0] == int(0.5 * fps) and active[-1] == int(1.0 * fps) - 1
    assert sed.sum() == active.size  # nothing else
    np.testing.assert_allclose(doa[active, 2], np.broadcast_to(direction_to_unit(40.0, -20.0), (active.size, 3)))
    assert np.all(doa[~sed] == 0)


def test_scenes_are_deterministic_per_seed_and_differ_across_seeds():
    config = SceneConfig(clip_seconds=2.0, overlap=2)
    a, b, c = make_scene(config, 7), make_scene(config, 7), make_scene(config, 8)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.events == b.events and a.events != c.events
    assert len(make_scenes(3, config, 1)) == 3


def test_reverberant_scene_keeps_the_direct_sound_first_and_adds_energy():
    config = SceneConfig(clip_seconds=1.0, reverberant=True, snr_db=60.0)
    events = [Event(1, 0.2, 0.6, 90.0, 0.0)]
    dry = render_scene(events, SceneConfig(clip_seconds=1.0, snr_db=60.0), 0)
    wet = render_scene(events, config, 0)
    start = int(0.2 * config.fs)
    assert np.all(np.abs(wet[:, : start - 1]) < 1e-2)  # silence before the onset
    assert np.sum(wet[0, int(0.6 * config.fs) :] ** 2) > 100 * np.sum(dry[0, int(0.6 * config.fs) :] ** 2)  # a tail


def test_room_images_and_direct_path():
    room = ShoeboxRoom(max_order=1)
    images, k = image_sources(room, (2.0, 2.0, 1.0))
    assert len(images) == 7 and sorted(k.tolist()) == [0, 1, 1, 1, 1, 1, 1]
    src = np.asarray(room.array_pos) + 1.0 * direction_to_unit(0.0, 0.0)
    h = foa_rir(room, src, fs=6400, rng=0)
    np.testing.assert_allclose(h[:, 0], [1, 0, 0, 1], atol=1e-9)  # direct sound, unit gain, from the front
    with pytest.raises(ValueError, match="not strictly inside the room"):
        foa_rir(room, (10.0, 1.0, 1.0), fs=6400, rng=0)
    with pytest.raises(ValueError, match="beta"):
        ShoeboxRoom(beta=1.5)


def test_sound_classes_are_unit_rms_and_distinct():
    fs = 6400
    spectra = []
    for c in range(len(CLASSES)):
        x = make_sound(c, fs, fs, 0)
        assert x.shape == (fs,) and np.sqrt(np.mean(x**2)) == pytest.approx(1.0)
        spec = np.abs(stft(x, nperseg=256)[2]).ravel()  # time-frequency shape (chirps differ in time)
        spectra.append(spec / np.linalg.norm(spec))
    similarity = np.array(spectra) @ np.array(spectra).T
    assert np.max(similarity - np.eye(len(CLASSES))) < 0.9  # no two classes share a spectrogram
    with pytest.raises(ValueError, match="below 6000 Hz"):
        make_sound(0, 100, 4000, 0)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c: frame_labels([Event(0, 1.5, 2.5, 0.0, 0.0)], c), "does not fit in the 2.0 s clip"),
        (lambda c: frame_labels([Event(0, 0.1, 0.5, 0.0, 70.0)], c), "outside the paper's grid"),
        (lambda c: frame_labels([Event(0, 0.1, 0.5, 270.0, 0.0)], c), "azimuth 270"),
        (lambda c: frame_labels([Event(99, 0.1, 0.5, 0.0, 0.0)], c), "class 99"),
        (lambda c: frame_labels([Event(0, 0.1, 0.5, 0.0, 0.0), Event(0, 0.3, 0.8, 10.0, 0.0)], c), "two events of class 0"),
        (lambda c: render_scene([], c, 0, fs=16000), "sample rate mismatch"),
        (lambda c: SceneConfig(overlap=4), "overlap must be 1, 2 or 3"),
        (lambda c: SceneConfig(gap_seconds=(-0.1, 0.6)), r"gap_seconds=\(-0.1, 0.6\).*>= 0.0"),
        (lambda c: SceneConfig(gap_seconds=(0.6, 0.1)), r"gap_seconds=\(0.6, 0.1\).*low <= high"),
        (lambda c: SceneConfig(gap_seconds=0.3), "gap_seconds must be a pair"),
        (lambda c: SceneConfig(level_db=(0.0, float("nan"))), r"level_db=\(0.0, nan\).*finite"),
        (lambda c: SceneConfig(level_db=(3.0, -3.0)), r"level_db=\(3.0, -3.0\).*e.g. \(-6.0, 0.0\)"),
        (lambda c: SceneConfig(distance_m=(0.0, 2.0)), r"distance_m=\(0.0, 2.0\).*> 0.0"),
        (lambda c: SceneConfig(distance_m=(2.0, 1.0)), r"distance_m=\(2.0, 1.0\).*low <= high"),
    ],
)
def test_bad_input_is_refused_by_name(call, message):
    with pytest.raises(ValueError, match=message):
        call(SceneConfig(clip_seconds=2.0))


def test_valid_edge_configs_are_accepted_and_draw_scenes():
    # zero gaps (back-to-back events) and a single level or distance are legitimate
    config = SceneConfig(clip_seconds=2.0, gap_seconds=(0.0, 0.0), level_db=(-3.0, -3.0), distance_m=(1.5, 1.5))
    events = draw_events(config, 0)
    assert len(events) >= 2 and all(b.onset >= a.offset - 1e-12 for a, b in zip(events, events[1:]))
