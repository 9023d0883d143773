"""Synthetic SELD scenes: events on the paper's direction grid, at most ``overlap`` at a time.

A scene is built in three steps:

1. ``draw_events``: ``overlap`` independent *tracks*, each a sequence of events separated by
   gaps, so at most ``overlap`` events sound together (ov1/ov2/ov3). Events that overlap in
   time get different classes (SELDnet predicts one direction per class) and different directions.
2. ``render_scene``: each event's sound is encoded into FOA, as a plane wave (anechoic) or
   through a shoebox-room impulse response (reverberant), then diffuse noise is added at ``snr_db``.
   The room is the chapter's :class:`~companion.seld.room.ShoeboxRoom` (the default, on which
   the committed checkpoints were trained), a pyroomacoustics
   :class:`~companion.seld.pra_room.PraRoom`, or a tuple of ``PraRoom`` from which each scene
   draws one (so a training and a test config can hold disjoint rooms).
3. ``frame_labels``: activity ``(frames, classes)`` and unit DOA vectors ``(frames, classes, 3)``
   at the label frame rate ``fs / hop``; a frame is active when its centre lies inside the event.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve

from companion.seeding import as_generator
from companion.seld.foa import AZIMUTHS_DEG, ELEVATIONS_DEG, check_direction, direction_to_unit, foa_encode
from companion.seld.pra_room import PraRoom
from companion.seld.pra_room import foa_rir as pra_foa_rir
from companion.seld.room import ShoeboxRoom, foa_rir
from companion.seld.sounds import CLASSES, make_sound

#: The spacing (degrees) of the paper's direction grid in azimuth and elevation.
GRID_STEP_DEG = 10.0


def _check_range(name: str, value, *, low: float | None = None, strict_low: bool = False, fix: str) -> None:
    """``value`` must be a pair ``(lo, hi)`` of finite numbers with ``lo <= hi`` (and above ``low``)."""
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}; {fix}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        raise ValueError(f"{name}={tuple(value)} must be finite with low <= high; {fix}")
    if low is not None and (lo < low or (strict_low and lo <= low)):
        bound = ">" if strict_low else ">="
        raise ValueError(f"{name}={tuple(value)}: the low end must be {bound} {low}; {fix}")


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn. Times in seconds, rates in Hz."""

    fs: int = 6400  # 6.4 kHz: 50 frames/s with a 256-point window and 50 % overlap (hop 128)
    hop: int = 128  # samples per label/feature frame
    clip_seconds: float = 4.0  # the paper used 30 s files cut into ~3 s sequences
    n_classes: int = len(CLASSES)
    overlap: int = 1  # ov1/ov2/ov3: the most events sounding at once
    snr_db: float = 30.0  # the paper's data sets are at 30 dB
    reverberant: bool = False
    # ShoeboxRoom (the checkpoints' room), a PraRoom, or a tuple of PraRoom drawn per scene
    room: ShoeboxRoom | PraRoom | tuple[PraRoom, ...] = field(default_factory=ShoeboxRoom)
    event_seconds: tuple[float, float] = (0.5, 1.5)
    gap_seconds: tuple[float, float] = (0.1, 0.6)
    level_db: tuple[float, float] = (-6.0, 0.0)  # per-event level spread
    distance_m: tuple[float, float] = (1.0, 2.5)  # source distance in the room (reverberant only)
    # 0: the paper's grid; 5: every direction half a step off it, so none was seen in training
    grid_offset_deg: float = 0.0

    def __post_init__(self):
        if not 1 <= self.overlap <= 3:
            raise ValueError(f"overlap must be 1, 2 or 3 (ov1..ov3), got {self.overlap}")
        if not self.overlap <= self.n_classes <= len(CLASSES):
            raise ValueError(f"n_classes must be in [{self.overlap}, {len(CLASSES)}], got {self.n_classes}")
        if self.hop <= 0 or self.fs <= 0 or self.clip_seconds <= 0:
            raise ValueError("fs, hop and clip_seconds must be positive")
        if self.event_seconds[0] <= 0 or self.event_seconds[0] > self.event_seconds[1]:
            raise ValueError(f"event_seconds must be an increasing positive range, got {self.event_seconds}")
        _check_range("gap_seconds", self.gap_seconds, low=0.0, strict_low=False,
                     fix="gaps between events in s, e.g. (0.1, 0.6); 0 is allowed")
        _check_range("level_db", self.level_db, fix="per-event level in dB re full scale, e.g. (-6.0, 0.0)")
        _check_range("distance_m", self.distance_m, low=0.0, strict_low=True,
                     fix="source distance in m, e.g. (1.0, 2.5); it must be > 0")
        g = self.grid_offset_deg
        if isinstance(g, bool) or not isinstance(g, (int, float)) or not 0 <= g < GRID_STEP_DEG:
            raise ValueError(f"grid_offset_deg must be a number in [0, {GRID_STEP_DEG}), got {g!r}; "
                             f"0 is the paper's grid, {GRID_STEP_DEG / 2:g} puts every direction half a step off it")
        rooms = self.room if isinstance(self.room, tuple) else (self.room,)
        bad = [r for r in rooms if not isinstance(r, (ShoeboxRoom, PraRoom))]
        if not rooms or bad or (isinstance(self.room, tuple) and not all(isinstance(r, PraRoom) for r in rooms)):
            raise ValueError(
                f"room must be a ShoeboxRoom, a PraRoom or a non-empty tuple of PraRoom, got {self.room!r}; "
                "e.g. room=ShoeboxRoom() (the default) or room=companion.seld.pra_room.TEST_ROOMS"
            )

    @property
    def rooms(self) -> tuple:
        """The rooms a reverberant scene may be rendered in (one, or the tuple's)."""
        return self.room if isinstance(self.room, tuple) else (self.room,)

    @property
    def directions(self) -> tuple[np.ndarray, np.ndarray]:
        """The azimuths and elevations (degrees) events are drawn from: the grid, shifted by the offset.

        Shifted azimuths wrap into [-180, 180); shifted elevations above the grid's top are dropped,
        so every direction stays within the elevations the paper's data cover.
        """
        az = (AZIMUTHS_DEG + self.grid_offset_deg + 180.0) % 360.0 - 180.0
        el = ELEVATIONS_DEG + self.grid_offset_deg
        return np.sort(az), el[el <= ELEVATIONS_DEG[-1]]

    @property
    def n_samples(self) -> int:
        return int(round(self.clip_seconds * self.fs))

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop

    @property
    def frames_per_second(self) -> float:
        return self.fs / self.hop


@dataclass(frozen=True)
class Event:
    """One sound event: class index, onset/offset in s, direction in degrees.

    The source distance of a reverberant scene is drawn when the scene is rendered
    (``SceneConfig.distance_m``, capped inside the room), not stored per event: the labels
    carry directions only.
    """

    class_index: int
    onset: float
    offset: float
    azimuth: float
    elevation: float


@dataclass
class Scene:
    """A rendered scene: ``audio (4, n)`` FOA, its ``events``, and frame labels ``sed``, ``doa``."""

    audio: np.ndarray
    events: list[Event]
    sed: np.ndarray  # (frames, classes) bool
    doa: np.ndarray  # (frames, classes, 3) unit vectors, zero where inactive
    config: SceneConfig
    room: ShoeboxRoom | PraRoom | None = None  # the room it was rendered in (None: anechoic)


def _overlapping(events: list[Event], onset: float, offset: float) -> list[Event]:
    return [e for e in events if e.onset < offset and onset < e.offset]


def draw_events(config: SceneConfig, rng) -> list[Event]:
    """Draw the events of one scene (step 1 of the module docstring), sorted by onset."""
    rng = as_generator(rng)
    events: list[Event] = []
    lo, hi = config.event_seconds
    azimuths, elevations = config.directions
    for _track in range(config.overlap):
        t = rng.uniform(0, config.gap_seconds[1])
        while t + lo <= config.clip_seconds:
            offset = min(t + rng.uniform(lo, hi), config.clip_seconds)
            busy = _overlapping(events, t, offset)
            free = [c for c in range(config.n_classes) if c not in {e.class_index for e in busy}]
            taken = {(e.azimuth, e.elevation) for e in busy}
            while True:
                az, el = float(rng.choice(azimuths)), float(rng.choice(elevations))
                if (az, el) not in taken:
                    break
            events.append(Event(int(rng.choice(free)), float(t), float(offset), az, el))
            t = offset + rng.uniform(*config.gap_seconds)
    return sorted(events, key=lambda e: e.onset)


def check_events(events: list[Event], config: SceneConfig) -> None:
    """Raise ``ValueError`` if an event lies outside the clip, has a bad class or direction."""
    for e in events:
        if not 0 <= e.onset < e.offset <= config.clip_seconds + 1e-9:
            raise ValueError(
                f"event [{e.onset}, {e.offset}] s does not fit in the {config.clip_seconds} s clip "
                "(need 0 <= onset < offset <= clip_seconds)"
            )
        if not 0 <= e.class_index < config.n_classes:
            raise ValueError(f"event class {e.class_index} is out of range [0, {config.n_classes})")
        check_direction(e.azimuth, e.elevation)
        if e.elevation < ELEVATIONS_DEG[0] or e.elevation > ELEVATIONS_DEG[-1]:
            raise ValueError(
                f"elevation {e.elevation} deg is outside the paper's grid "
                f"[{ELEVATIONS_DEG[0]}, {ELEVATIONS_DEG[-1]}]"
            )


def frame_labels(events: list[Event], config: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """Activity ``(frames, classes)`` and DOA unit vectors ``(frames, classes, 3)`` (step 3)."""
    check_events(events, config)
    centres = (np.arange(config.n_frames) + 0.5) * config.hop / config.fs  # s
    sed = np.zeros((config.n_frames, config.n_classes), dtype=bool)
    doa = np.zeros((config.n_frames, config.n_classes, 3))
    for e in events:
        active = (centres >= e.onset) & (centres < e.offset)
        if np.any(sed[active, e.class_index]):
            raise ValueError(f"two events of class {e.class_index} overlap in time; SELDnet cannot label that")
        sed[active, e.class_index] = True
        doa[active, e.class_index] = direction_to_unit(e.azimuth, e.elevation)
    return sed, doa


def draw_room(config: SceneConfig, rng) -> ShoeboxRoom | PraRoom | None:
    """The room of one scene: ``None`` if anechoic, else ``config.room`` or one of its tuple.

    A single room draws nothing from ``rng`` (so the ShoeboxRoom scenes of the committed
    checkpoints are unchanged); a tuple draws one index.
    """
    if not config.reverberant:
        return None
    rooms = config.rooms
    return rooms[int(as_generator(rng).integers(len(rooms)))] if len(rooms) > 1 else rooms[0]


def room_rir(room: ShoeboxRoom | PraRoom, source_pos, *, fs: int, rng) -> np.ndarray:
    """FOA impulse response ``(4, L)`` of either kind of room, direct sound at sample 0 (gain 1)."""
    if isinstance(room, PraRoom):
        return pra_foa_rir(room, source_pos, fs=fs)
    return foa_rir(room, source_pos, fs=fs, rng=rng)


def render_scene(
    events: list[Event], config: SceneConfig, rng, *, fs: int | None = None, room: ShoeboxRoom | PraRoom | None = None
) -> np.ndarray:
    """FOA audio ``(4, n_samples)`` of the events plus diffuse noise at ``config.snr_db`` (step 2).

    ``fs``, if given, must equal ``config.fs`` (a guard against mixing sample rates).
    ``room``: the room of a reverberant scene; by default :func:`draw_room` picks it.
    """
    if fs is not None and fs != config.fs:
        raise ValueError(f"sample rate mismatch: got fs={fs} Hz but the scene config says {config.fs} Hz")
    check_events(events, config)
    rng = as_generator(rng)
    if config.reverberant and room is None:
        room = draw_room(config, rng)
    n = config.n_samples
    audio = np.zeros((4, n))
    powers = []
    for e in events:
        start, stop = int(round(e.onset * config.fs)), int(round(e.offset * config.fs))
        gain = 10 ** (rng.uniform(*config.level_db) / 20)
        sound = gain * make_sound(e.class_index, stop - start, config.fs, rng)
        powers.append(gain**2)
        if config.reverberant:
            unit = direction_to_unit(e.azimuth, e.elevation)
            reach = room.max_distance(unit)
            distance = min(rng.uniform(*config.distance_m), reach)
            h = room_rir(room, np.asarray(room.array_pos) + distance * unit, fs=config.fs, rng=rng)
            wet = fftconvolve(sound[None, :], h, axes=1)[:, : n - start]
            audio[:, start : start + wet.shape[1]] += wet
        else:
            audio[:, start:stop] += foa_encode(sound, e.azimuth, e.elevation)
    # diffuse noise, SN3D power split 1 : 1/3 : 1/3 : 1/3; SNR against the mean event power in W
    signal_power = float(np.mean(powers)) if powers else 1.0
    noise_std = np.sqrt(signal_power / 10 ** (config.snr_db / 10))
    audio += noise_std * rng.standard_normal((4, n)) * np.array([1.0, 3**-0.5, 3**-0.5, 3**-0.5])[:, None]
    return audio


def make_scene(config: SceneConfig, rng) -> Scene:
    """Draw, render and label one scene."""
    rng = as_generator(rng)
    events = draw_events(config, rng)
    room = draw_room(config, rng)
    audio = render_scene(events, config, rng, room=room)
    sed, doa = frame_labels(events, config)
    return Scene(
        audio=audio.astype(np.float32), events=events, sed=sed, doa=doa.astype(np.float32), config=config, room=room
    )


def make_scenes(n_scenes: int, config: SceneConfig, seed: int) -> list[Scene]:
    """``n_scenes`` scenes drawn from one seed; different seeds give disjoint random splits."""
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be at least 1, got {n_scenes}")
    rng = as_generator(seed)
    return [make_scene(config, rng) for _ in range(n_scenes)]
