"""A small image-source model of a shoebox room that returns FOA impulse responses.

Each image source is a plane wave at the array: it arrives with delay ``r / c``, gain
``beta^k * r_direct / r`` (``k`` reflections, each scaling the amplitude by ``beta``) and
FOA gains of its own direction. Above ``max_order`` the response continues as an isotropic
diffuse tail: independent Gaussian noise in W and in X, Y, Z with a third of W's power each
(the SN3D power split of a diffuse field), decaying by 60 dB over ``rt60`` seconds.
The response is shifted so that the direct sound arrives at sample 0, so the event labels
of an anechoic and a reverberant scene coincide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from companion.seeding import as_generator
from companion.seld.foa import foa_gains, unit_to_direction

SPEED_OF_SOUND = 343.0  # m/s at 20 degrees C


@dataclass(frozen=True)
class ShoeboxRoom:
    """A rectangular room with one reflection coefficient for all walls.

    ``dims``: (Lx, Ly, Lz) in metres; ``array_pos``: the FOA microphone's position in metres;
    ``beta``: pressure reflection coefficient of every wall, in (0, 1);
    ``max_order``: highest image order modelled exactly; ``rt60``: decay time of the tail in s;
    ``tail_ratio``: energy of the diffuse tail relative to the direct sound.
    """

    dims: tuple[float, float, float] = (7.0, 5.5, 3.2)
    array_pos: tuple[float, float, float] = (3.3, 2.6, 1.5)
    beta: float = 0.75  # about 0.44 absorption, a furnished room
    max_order: int = 3  # 63 images: enough for distinct early reflections, cheap to sum
    rt60: float = 0.4  # s, a typical office
    tail_ratio: float = 0.3

    def __post_init__(self):
        dims, pos = np.asarray(self.dims, float), np.asarray(self.array_pos, float)
        if dims.shape != (3,) or np.any(dims <= 0):
            raise ValueError(f"room dims must be three positive lengths in metres, got {self.dims}")
        if pos.shape != (3,) or np.any(pos <= 0) or np.any(pos >= dims):
            raise ValueError(f"array position {self.array_pos} is not strictly inside the room {self.dims}")
        if not 0 < self.beta < 1:
            raise ValueError(f"reflection coefficient beta must be in (0, 1), got {self.beta}")
        if self.max_order < 0 or self.rt60 <= 0 or self.tail_ratio < 0:
            raise ValueError("need max_order >= 0, rt60 > 0 and tail_ratio >= 0")

    def max_distance(self, unit: np.ndarray, margin: float = 0.3) -> float:
        """Largest distance from the array along ``unit`` that stays ``margin`` metres inside the walls."""
        pos, dims = np.asarray(self.array_pos), np.asarray(self.dims)
        with np.errstate(divide="ignore"):
            to_wall = np.where(unit > 0, (dims - margin - pos) / unit, np.where(unit < 0, (margin - pos) / unit, np.inf))
        return float(np.min(to_wall))


def image_sources(room: ShoeboxRoom, source_pos) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(m, 3)`` and reflection orders ``(m,)`` of all images of order <= ``max_order``.

    Along each axis an image sits at ``(1 - 2q) s + 2 n L`` with ``q`` in {0, 1}; it has been
    reflected ``|n - q| + |n|`` times by that axis's two walls.
    """
    s, dims, order = np.asarray(source_pos, float), np.asarray(room.dims, float), room.max_order
    n = np.arange(-order, order + 1)
    per_axis_pos, per_axis_k = [], []
    for axis in range(3):
        q = np.array([0, 1])
        nn, qq = np.meshgrid(n, q, indexing="ij")
        per_axis_pos.append(((1 - 2 * qq) * s[axis] + 2 * nn * dims[axis]).ravel())
        per_axis_k.append((np.abs(nn - qq) + np.abs(nn)).ravel())
    px, py, pz = np.meshgrid(*per_axis_pos, indexing="ij")
    kx, ky, kz = np.meshgrid(*per_axis_k, indexing="ij")
    k = (kx + ky + kz).ravel()
    keep = k <= order
    return np.stack([px.ravel(), py.ravel(), pz.ravel()], axis=1)[keep], k[keep]


def foa_rir(room: ShoeboxRoom, source_pos, *, fs: int, rng) -> np.ndarray:
    """FOA room impulse response ``(4, L)`` from ``source_pos`` to the array, direct sound at sample 0.

    The direct path has unit gain; ``rng`` (seed or Generator) draws the diffuse tail.
    """
    src = np.asarray(source_pos, float)
    if src.shape != (3,) or np.any(src <= 0) or np.any(src >= np.asarray(room.dims)):
        raise ValueError(f"source position {source_pos} is not strictly inside the room {room.dims}")
    rng = as_generator(rng)
    images, k = image_sources(room, src)
    rel = images - np.asarray(room.array_pos)
    r = np.linalg.norm(rel, axis=1)
    r_direct = float(np.min(r))
    if r_direct < 1e-3:
        raise ValueError("the source coincides with the microphone array")
    delay = np.round((r - r_direct) / SPEED_OF_SOUND * fs).astype(int)
    gain = room.beta**k * r_direct / r
    az, el = unit_to_direction(rel)
    t0 = int(delay.max()) + 1
    length = t0 + int(room.rt60 * fs)
    h = np.zeros((4, length))
    np.add.at(h.T, delay, gain[:, None] * foa_gains(az, el))
    # diffuse tail from the end of the modelled images, SN3D power split 1 : 1/3 : 1/3 : 1/3
    n_tail = length - t0
    envelope = np.exp(-6.9 * np.arange(n_tail) / (room.rt60 * fs))
    noise = rng.standard_normal((4, n_tail)) * np.array([1.0, 1 / 3, 1 / 3, 1 / 3])[:, None] ** 0.5
    tail = noise * envelope
    tail *= np.sqrt(room.tail_ratio / max(np.sum(tail[0] ** 2), 1e-12))
    h[:, t0:] += tail
    return h
