"""A shoebox room simulated by pyroomacoustics, heard through an FOA microphone.

:class:`~companion.seld.room.ShoeboxRoom` (the room of the committed checkpoints) models three
orders of reflections and glues on a synthetic tail whose decay time is a free parameter.
:class:`PraRoom` instead lets the walls set the decay:

1. the target ``rt60`` and the room's size give the walls' energy absorption ``alpha`` and
   the image order through ``pyroomacoustics.inverse_sabine``, i.e. Sabine's formula
   ``RT60 = 24 ln(10) V / (c S alpha)`` (``V`` volume, ``S`` wall area); the order is the
   smallest for which images out to about ``c rt60`` are included;
2. pyroomacoustics' image-source model (Allen and Berkley) gives every image's position,
   reflection order and amplitude damping ``sqrt(1 - alpha)`` per reflection (run once per
   room and order: in a shoebox the images are fixed mirror maps of the source, so each new
   source is an affine map of that run, :func:`image_sources`);
3. each image is a plane wave at the array, encoded with the chapter's own
   :func:`~companion.seld.foa.foa_gains` of its direction (ACN/SN3D, AmbiX), delayed by
   ``(r - r_direct) / c`` (rounded to a sample) and scaled by ``damping * r_direct / r``;
4. a 10 Hz second-order Butterworth high-pass, as pyroomacoustics applies to its own responses
   (and as Allen and Berkley advised): every image adds a positive amplitude to W, and late in
   the response, with many images per sample, they pile up into a large offset at 0 Hz that no
   real room has. Without it, W's late energy, and the measured decay time, come out far too
   large (W carries much more energy than X, Y and Z together, where a field of plane waves
   gives them equal energy, notebook 1).

Sabine's formula assumes a diffuse field. A shoebox whose walls all absorb alike, with
specular reflections, is not one: paths nearly parallel to a wall meet few walls and decay
slowly, so the measured decay (:mod:`companion.seld.decay`, T30) is up to about a quarter
longer than Sabine's (as it is for pyroomacoustics' own responses). ``PraRoom`` therefore
corrects ``alpha`` (step 1b): it scales Sabine's absorption by measured / target RT60 (the
median T30 over eight reference sources, one towards each corner) until the two agree within
``RT60_TOLERANCE``, and keeps Sabine's image order for the target. Single sources still differ
from the median by several per cent: the decay of a non-diffuse room depends on where the
source is. ``sabine_alpha`` and ``alpha`` are both reported, so the correction is visible.

Only images inside the sphere around the array that the image order covers completely
(:func:`complete_radius`) are kept, so the response ends cleanly instead of thinning out. As in
``ShoeboxRoom``, the direct sound has unit gain and arrives at sample 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
from scipy.signal import butter, sosfilt

from companion.seld.foa import foa_gains_of_unit

SPEED_OF_SOUND = 343.0  # m/s: pyroomacoustics' default, and room.SPEED_OF_SOUND


#: Cut-off of the high-pass (step 4 above): pyroomacoustics' default ``rir_hpf_fc``.
HIGHPASS_HZ = 10.0
#: Relative error of the median T30 of the reference sources that the absorption correction accepts.
RT60_TOLERANCE = 0.01
#: Sample rate of the calibration responses (the decay does not depend on it, a fixed one
#: makes a room's absorption the same whatever the scenes' rate).
CALIBRATION_FS = 8000


@dataclass(frozen=True)
class PraRoom:
    """A rectangular room with one absorption for all walls, chosen from a target RT60.

    ``dims``: (Lx, Ly, Lz) in metres; ``array_pos``: the FOA microphone's position in metres;
    ``rt60``: the target reverberation time in s, T30 of the W channel (module docstring);
    ``name``: a label for tables and for train/test splits of rooms.
    """

    dims: tuple[float, float, float] = (6.0, 4.5, 3.0)
    array_pos: tuple[float, float, float] = (2.5, 2.0, 1.4)
    rt60: float = 0.5  # s, a living room
    name: str = "room"

    def __post_init__(self):
        dims, pos = np.asarray(self.dims, float), np.asarray(self.array_pos, float)
        if dims.shape != (3,) or np.any(~np.isfinite(dims)) or np.any(dims <= 0):
            raise ValueError(f"room dims must be three positive lengths in metres, got {self.dims}")
        if pos.shape != (3,) or np.any(pos <= 0) or np.any(pos >= dims):
            raise ValueError(
                f"array position {self.array_pos} is not strictly inside the room {self.dims}; "
                "give a point with 0 < p < L on every axis"
            )
        # tuples of floats, so that a room is hashable (rooms key the absorption cache)
        object.__setattr__(self, "dims", tuple(float(d) for d in dims))
        object.__setattr__(self, "array_pos", tuple(float(p) for p in pos))
        if not (np.isfinite(self.rt60) and self.rt60 > 0):
            raise ValueError(f"rt60 must be a positive number of seconds, got {self.rt60}")
        if sabine_absorption(self.dims, self.rt60) >= 1:
            shortest = sabine_rt60(self.dims, 1.0)
            raise ValueError(
                f"rt60={self.rt60} s is too short for a {self.dims} m room: Sabine's formula needs an "
                f"absorption above 1; ask for more than {shortest:.3f} s"
            )

    @property
    def sabine_alpha(self) -> float:
        """Energy absorption from ``pyroomacoustics.inverse_sabine`` (Sabine's formula)."""
        return _sabine(self.dims, self.rt60)[0]

    @property
    def max_order(self) -> int:
        """Image order from ``pyroomacoustics.inverse_sabine`` for the target ``rt60``."""
        return _sabine(self.dims, self.rt60)[1]

    @property
    def alpha(self) -> float:
        """The walls' energy absorption: Sabine's, corrected until T30 equals ``rt60``."""
        return _calibrated_alpha(self.dims, self.array_pos, self.rt60)

    def reference_sources(self) -> list[np.ndarray]:
        """The calibration sources: 2 m (or less, 0.3 m inside the walls) towards each corner."""
        out = []
        for corner in np.array(np.meshgrid(*[(0.0, d) for d in self.dims], indexing="ij")).reshape(3, -1).T:
            unit = (corner - self.array_pos) / np.linalg.norm(corner - self.array_pos)
            out.append(np.asarray(self.array_pos) + min(2.0, self.max_distance(unit)) * unit)
        return out

    def reference_source(self) -> np.ndarray:
        """The reference source towards the farthest corner (one of :meth:`reference_sources`)."""
        srcs = self.reference_sources()
        corners = np.array(np.meshgrid(*[(0.0, d) for d in self.dims], indexing="ij")).reshape(3, -1).T
        return srcs[int(np.argmax(np.linalg.norm(corners - np.asarray(self.array_pos), axis=1)))]

    def max_distance(self, unit: np.ndarray, margin: float = 0.3) -> float:
        """Largest distance from the array along ``unit`` that stays ``margin`` metres inside the walls."""
        pos, dims = np.asarray(self.array_pos), np.asarray(self.dims)
        with np.errstate(divide="ignore"):
            to_wall = np.where(unit > 0, (dims - margin - pos) / unit, np.where(unit < 0, (margin - pos) / unit, np.inf))
        return float(np.min(to_wall))


def _volume_area(dims) -> tuple[float, float]:
    d = np.asarray(dims, float)
    return float(np.prod(d)), float(2 * sum(a * b for a, b in combinations(d, 2)))


def sabine_rt60(dims, alpha: float, *, c: float = SPEED_OF_SOUND) -> float:
    """Sabine's reverberation time ``24 ln(10) V / (c S alpha)`` of a shoebox, in s."""
    V, S = _volume_area(dims)
    return float(24 * np.log(10) * V / (c * S * alpha))


def eyring_rt60(dims, alpha: float, *, c: float = SPEED_OF_SOUND) -> float:
    """Eyring's reverberation time ``24 ln(10) V / (-c S ln(1 - alpha))``, in s.

    Eyring counts reflections (``c S / 4V`` per second, each keeping ``1 - alpha`` of the
    energy); Sabine replaces ``-ln(1 - alpha)`` by ``alpha``, which is exact only for small
    ``alpha`` and gives longer times than Eyring's for every ``alpha > 0``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"Eyring's formula needs an absorption in (0, 1), got {alpha}")
    V, S = _volume_area(dims)
    return float(24 * np.log(10) * V / (-c * S * np.log1p(-alpha)))


def sabine_absorption(dims, rt60: float, *, c: float = SPEED_OF_SOUND) -> float:
    """The absorption that makes Sabine's formula give ``rt60`` (above 1: infeasible)."""
    V, S = _volume_area(dims)
    return float(24 * np.log(10) * V / (c * S * rt60))


@lru_cache(maxsize=256)
def _sabine(dims: tuple, rt60: float) -> tuple[float, int]:
    import pyroomacoustics as pra

    alpha, order = pra.inverse_sabine(rt60, list(dims), c=SPEED_OF_SOUND)
    return float(alpha), int(order)


@lru_cache(maxsize=256)
def _calibrated_alpha(dims: tuple, array_pos: tuple, rt60: float) -> float:
    """Step 1b of the module docstring: ``alpha <- alpha * T30(alpha) / rt60`` (T30 is close to
    proportional to ``1 / alpha``), from Sabine's ``alpha``, until the median T30 of the
    reference sources is within ``RT60_TOLERANCE`` of ``rt60``. The images of each reference
    source are computed once; only their damping ``(1 - alpha)^(k / 2)`` changes."""
    from companion.seld.decay import measure_rt60

    room = PraRoom(dims, array_pos, rt60)
    alpha, order = _sabine(dims, rt60)
    sets = [image_sources(room, src, alpha=alpha, order=order)[:2] for src in room.reference_sources()]
    for _ in range(8):
        t30 = [measure_rt60(_render(room, images, np.sqrt(1 - alpha) ** k, order, CALIBRATION_FS)[0],
                            CALIBRATION_FS) for images, k in sets]
        measured = float(np.median(t30))
        if abs(measured / rt60 - 1) < RT60_TOLERANCE:
            return float(alpha)
        alpha = alpha * measured / rt60
        if not 0 < alpha < 1:
            break
    raise ValueError(
        f"no wall absorption gives rt60={rt60} s in the room {dims} (last try alpha={alpha:.3f}, "
        f"T30 {measured:.3f} s); ask for a longer rt60"
    )


def image_sources(room: PraRoom, source_pos, *, alpha: float | None = None, order: int | None = None):
    """Positions ``(m, 3)``, reflection orders ``(m,)`` and amplitude dampings ``(m,)`` of the
    images of ``source_pos``, from pyroomacoustics' image-source model (walls: ``room.alpha``
    and ``room.max_order`` unless given).

    The images of a shoebox are a fixed lattice of mirror maps of the source (:func:`_image_lattice`),
    read once per room and order from pyroomacoustics; each source then costs one affine map
    instead of a new image-source run, with positions exact in float64 (pyroomacoustics holds them
    in float32). The damping of an image of order ``k`` is ``sqrt(1 - alpha)^k``, as
    pyroomacoustics computes it for walls that all absorb alike.
    """
    src = np.asarray(source_pos, float)
    if src.shape != (3,) or np.any(src <= 0) or np.any(src >= np.asarray(room.dims)):
        raise ValueError(f"source position {source_pos} is not strictly inside the room {room.dims}")
    alpha = room.alpha if alpha is None else alpha
    order = room.max_order if order is None else order
    translation, sign, orders = _image_lattice(room.dims, room.array_pos, int(order))
    return translation + sign * src, orders, np.sqrt(1 - alpha) ** orders


@lru_cache(maxsize=32)
def _image_lattice(dims: tuple, array_pos: tuple, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pyroomacoustics' images of a shoebox, as maps of the source: ``image = t + sign * source``.

    Along an axis of length ``L`` an image sits at ``2 n L + s`` or at ``2 n L - s`` (integer
    ``n``, source coordinate ``s``). For ``0 < s < L`` the two forms never coincide, so one run of
    pyroomacoustics' model, for any source inside, tells which form and which ``n`` each image
    has. Returns translations ``t (m, 3)`` in metres, signs ``(m, 3)`` of +-1 and the reflection
    orders ``(m,)`` that pyroomacoustics reports. (In a shoebox every image of order
    ``<= order`` is visible from inside, so the set does not depend on the source; the tests
    check this against new pyroomacoustics runs.)
    """
    import pyroomacoustics as pra

    dims_arr = np.asarray(dims, float)
    probe = dims_arr * np.array([0.37, 0.61, 0.43])  # any point inside; not the array position
    sim = pra.ShoeBox(list(dims), fs=8000, materials=pra.Material(0.5), max_order=order, air_absorption=False)
    sim.add_source(probe)
    sim.add_microphone(np.asarray(array_pos, float))
    sim.image_source_model()
    images = sim.sources[0].images.T.astype(float)  # (m, 3), float32 in pyroomacoustics
    period = 2 * dims_arr
    n_plus = np.round((images - probe) / period)
    n_minus = np.round((images + probe) / period)
    tolerance = 1e-3 * dims_arr  # float32 positions: ~3e-5 m even for images 400 m away
    plus = np.abs(images - probe - n_plus * period) < tolerance
    minus = np.abs(images + probe - n_minus * period) < tolerance
    if not np.all(plus ^ minus):
        raise RuntimeError("pyroomacoustics returned an image that is not a mirror image of the source")
    sign = np.where(plus, 1.0, -1.0)
    translation = np.where(plus, n_plus, n_minus) * period
    return translation, sign, sim.sources[0].orders.astype(int)


def complete_radius(room: PraRoom, order: int | None = None) -> float:
    """Radius in metres of the largest sphere around the array inside which every image is modelled.

    An image in the mirrored room copy with indices ``(i, j, k)`` has order
    ``|i| + |j| + |k|``, and a point at offset ``d`` from the array at ``p`` lies in a copy with
    ``|i| <= (|d_x| + max(p_x, L_x - p_x)) / L_x`` (likewise ``j``, ``k``). So all images within
    ``rho`` are of order ``<= max_order`` when
    ``rho sqrt(sum 1/L^2) + sum max(p, L - p)/L < max_order + 1``. (pyroomacoustics sizes the
    order with the two-dimensional radius ``L_i L_j / sqrt(L_i^2 + L_j^2)``, a little larger.)
    """
    order = room.max_order if order is None else order
    dims, pos = np.asarray(room.dims, float), np.asarray(room.array_pos, float)
    offset = float(np.sum(np.maximum(pos, dims - pos) / dims))
    return float((order + 1 - offset) / np.sqrt(np.sum(dims**-2.0)))


def _rir(room: PraRoom, alpha: float, order: int, source_pos, fs: int) -> np.ndarray:
    images, _, damping = image_sources(room, source_pos, alpha=alpha, order=order)
    return _render(room, images, damping, order, fs)


def _render(room: PraRoom, images, damping, order: int, fs: int) -> np.ndarray:
    """Steps 3 and 4 of the module docstring: images ``(m, 3)`` with amplitude ``damping (m,)``
    to an FOA response ``(4, L)``, direct sound at sample 0 with gain 1."""
    rel = images - np.asarray(room.array_pos)  # (m, 3) array -> image
    r = np.linalg.norm(rel, axis=1)
    keep = r < complete_radius(room, order)  # a complete set of images: no thinning at late times
    rel, r, damping = rel[keep], r[keep], damping[keep]
    direct = int(np.argmin(r))
    r_direct = float(r[direct])
    if r_direct < 1e-3:
        raise ValueError("the source coincides with the microphone array")
    delay = np.round((r - r_direct) / SPEED_OF_SOUND * fs).astype(int)
    gain = damping / damping[direct] * r_direct / r  # direct path: gain 1
    weights = gain[:, None] * foa_gains_of_unit(rel / r[:, None])  # (m, 4)
    length = int(delay.max()) + 1
    h = np.stack([np.bincount(delay, weights=weights[:, c], minlength=length) for c in range(4)])
    # step 4: the high-pass of the module docstring; dividing by its first tap keeps the direct gain 1
    sos = butter(2, HIGHPASS_HZ, btype="highpass", fs=fs, output="sos")
    return sosfilt(sos, h, axis=1) / np.prod(sos[:, 0])


def foa_rir(room: PraRoom, source_pos, *, fs: int, alpha: float | None = None) -> np.ndarray:
    """FOA room impulse response ``(4, L)`` [W, Y, Z, X] from ``source_pos``, direct sound at sample 0.

    Deterministic (no random tail): every sample comes from an image source. ``alpha``
    overrides the walls' absorption (default ``room.alpha``; ``room.sabine_alpha`` shows
    what Sabine's formula alone would give).
    """
    if int(fs) != fs or fs <= 0:
        raise ValueError(f"fs must be a positive integer sample rate in Hz, got {fs}")
    alpha = room.alpha if alpha is None else float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha is an energy absorption coefficient in (0, 1), got {alpha}")
    return _rir(room, alpha, room.max_order, source_pos, int(fs))


#: Rooms for training and for testing: disjoint sizes, decay times and array positions, so a
#: config with ``room=TEST_ROOMS`` scores a model on rooms that a ``TRAIN_ROOMS`` model never
#: heard. (The committed checkpoints were trained on ShoeboxRoom only: every PraRoom is new to them.)
TRAIN_ROOMS = (
    PraRoom((5.0, 4.0, 2.7), (2.0, 1.7, 1.3), 0.3, "small, array off-centre"),
    PraRoom((5.0, 4.0, 2.7), (3.0, 2.4, 1.5), 0.3, "small, array near the centre"),
    PraRoom((7.5, 6.0, 3.2), (3.2, 2.6, 1.4), 0.6, "large, array near the centre"),
    PraRoom((7.5, 6.0, 3.2), (5.2, 4.0, 1.6), 0.6, "large, array off-centre"),
)
TEST_ROOMS = (
    PraRoom((6.0, 4.5, 3.0), (2.5, 2.0, 1.4), 0.5, "medium, test"),
    PraRoom((4.2, 3.6, 2.5), (2.4, 1.5, 1.2), 0.4, "small, test"),
)
