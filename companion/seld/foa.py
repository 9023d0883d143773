"""First-order Ambisonics (FOA): encoding a plane wave, directions and angles between them.

Conventions (the ones of the SELDnet data sets and of DCASE FOA audio):

- channel order ACN ``[W, Y, Z, X]`` and SN3D normalisation, so a plane wave of unit
  amplitude has gains ``[1, sin(az) cos(el), sin(el), cos(az) cos(el)]``;
- azimuth ``az`` in degrees, 0 = front (+x), counter-clockwise positive (+90 = left, +y);
- elevation ``el`` in degrees, positive up (+z);
- unit vector ``(x, y, z) = (cos el cos az, cos el sin az, sin el)``, the DOA regression target.
"""

from __future__ import annotations

import numpy as np

#: Channel names of FOA in ACN order.
CHANNELS = ("W", "Y", "Z", "X")

#: The paper's direction grid (ANSYN/RESYN): azimuth -180..170, elevation -60..50, 10 degree steps.
AZIMUTHS_DEG = np.arange(-180, 180, 10)
ELEVATIONS_DEG = np.arange(-60, 60, 10)


def check_direction(azimuth_deg, elevation_deg) -> tuple[np.ndarray, np.ndarray]:
    """Validate directions in degrees; return them as float arrays of one broadcast shape.

    Azimuth must lie in [-180, 180] and elevation in [-90, 90]; anything else raises
    ``ValueError`` naming the offending value, because a wrapped-around angle usually
    means that degrees and radians were mixed up.
    """
    az = np.asarray(azimuth_deg, dtype=float)
    el = np.asarray(elevation_deg, dtype=float)
    if not (np.all(np.isfinite(az)) and np.all(np.isfinite(el))):
        raise ValueError("directions must be finite numbers of degrees")
    if np.any(np.abs(az) > 180):
        bad = az[np.abs(az) > 180].ravel()[0]
        raise ValueError(f"azimuth {bad} deg is out of range [-180, 180]; pass degrees, wrapped")
    if np.any(np.abs(el) > 90):
        bad = el[np.abs(el) > 90].ravel()[0]
        raise ValueError(f"elevation {bad} deg is out of range [-90, 90]; pass degrees")
    return np.broadcast_arrays(az, el)


def direction_to_unit(azimuth_deg, elevation_deg) -> np.ndarray:
    """Unit vectors ``(..., 3)`` = (x, y, z) of directions given in degrees."""
    az, el = check_direction(azimuth_deg, elevation_deg)
    az, el = np.radians(az), np.radians(el)
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def unit_to_direction(xyz) -> tuple[np.ndarray, np.ndarray]:
    """Azimuth and elevation in degrees of vectors ``(..., 3)`` (need not be unit length)."""
    v = np.asarray(xyz, dtype=float)
    if v.shape[-1] != 3:
        raise ValueError(f"expected vectors with a last axis of 3 (x, y, z), got shape {v.shape}")
    az = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    el = np.degrees(np.arctan2(v[..., 2], np.hypot(v[..., 0], v[..., 1])))
    return az, el


def angular_distance(u, v) -> np.ndarray:
    """Great-circle angle in degrees between vectors ``(..., 3)`` (normalised first).

    Uses ``atan2(|u x v|, u . v)``, which is accurate at small angles where ``arccos``
    of a dot product near 1 loses half its digits.
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    if u.shape[-1] != 3 or v.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) vectors, got shapes {u.shape} and {v.shape}")
    cross = np.linalg.norm(np.cross(u, v), axis=-1)
    dot = np.sum(u * v, axis=-1)
    return np.degrees(np.arctan2(cross, dot))


def foa_gains(azimuth_deg, elevation_deg) -> np.ndarray:
    """SN3D gains ``(..., 4)`` in ACN order [W, Y, Z, X] for plane waves from the given directions.

    They are the real first-order spherical harmonics with Schmidt semi-normalisation:
    ``Y_0^0 = 1``, ``Y_1^{-1} = sin(az) cos(el)``, ``Y_1^0 = sin(el)``, ``Y_1^1 = cos(az) cos(el)``.
    """
    return foa_gains_of_unit(direction_to_unit(azimuth_deg, elevation_deg))


def foa_gains_of_unit(xyz) -> np.ndarray:
    """The gains of :func:`foa_gains` ``(..., 4)`` from unit vectors ``(..., 3)`` = (x, y, z).

    In SN3D the three first-order gains are the unit vector's own components, so a caller
    that holds vectors (an image-source model, say) need not go through angles.
    """
    xyz = np.asarray(xyz, dtype=float)
    if xyz.shape[-1] != 3:
        raise ValueError(f"expected unit vectors with a last axis of 3 (x, y, z), got shape {xyz.shape}")
    ones = np.ones(xyz.shape[:-1] + (1,))
    # ACN index = n^2 + n + m: (0,0) -> W, (1,-1) -> Y, (1,0) -> Z, (1,1) -> X
    return np.concatenate([ones, xyz[..., 1:2], xyz[..., 2:3], xyz[..., 0:1]], axis=-1)


def foa_encode(signal, azimuth_deg, elevation_deg) -> np.ndarray:
    """Encode a mono signal as a plane wave into FOA, shape ``(4, n)`` in ACN/SN3D order.

    Parameters
    ----------
    signal : array ``(n,)``
        The mono source signal (any unit; the W channel equals it).
    azimuth_deg, elevation_deg : float or array ``(n,)``
        The direction in degrees. Arrays give a moving source, one direction per sample.

    Returns
    -------
    ndarray ``(4, n)``: channels [W, Y, Z, X].

    >>> foa_encode(np.ones(2), 90.0, 0.0).round(6).tolist()
    [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    """
    s = np.asarray(signal, dtype=float)
    if s.ndim != 1:
        raise ValueError(f"signal must be mono with shape (n,), got shape {s.shape}")
    az = np.asarray(azimuth_deg, dtype=float)
    el = np.asarray(elevation_deg, dtype=float)
    for name, a in (("azimuth_deg", az), ("elevation_deg", el)):
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != s.shape[0]):
            raise ValueError(f"{name} must be a scalar or have one value per sample ({s.shape[0]}), got shape {a.shape}")
    gains = foa_gains(az, el)  # (4,) or (n, 4)
    return (gains.T * s) if gains.ndim == 2 else gains[:, None] * s[None, :]
