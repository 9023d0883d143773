"""SELDnet's input: STFT magnitude and phase of every channel, standardised per feature bin.

Layout ``(2C, T, F)`` = ``[|X_1|, ..., |X_C|, angle X_1, ..., angle X_C]``: map ``c`` is the
magnitude of channel ``c`` and map ``C + c`` its phase. (The released Keras code stores the
features as ``(frames, bins * channels)`` and reshapes them to ``(T, bins, 2C)``, which
interleaves bins and channels; we build the layout the paper describes instead.)

Frames are aligned with the labels of :mod:`companion.seld.scenes`: frame ``t`` is centred
on ``(t + 1/2) * hop`` samples. The window is Hann (the released code's ``np.hanning``; the
paper's text says Hamming). The Nyquist bin is dropped, as in the released code, so
``F = n_fft // 2``.
"""

from __future__ import annotations

import numpy as np
import torch


PHASES = ("absolute", "relative")


def aligned_stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT ``(..., n_fft // 2, n // hop)`` of signals ``x (..., n)`` with a Hann window,
    frame ``t`` centred on ``(t + 1/2) * hop`` samples (the label frames of
    :mod:`companion.seld.scenes`) and the Nyquist bin dropped. The one place the chapter pads
    and trims its STFT: the features and the intensity baseline both call it."""
    if n_fft % 2 or hop <= 0 or hop > n_fft:
        raise ValueError(f"need an even n_fft and 0 < hop <= n_fft, got n_fft={n_fft}, hop={hop}")
    shape, n = x.shape[:-1], x.shape[-1]
    n_frames = n // hop
    if n_frames < 1:
        raise ValueError(f"audio of {n} samples is shorter than one hop ({hop})")
    pad = n_fft // 2 - hop // 2
    flat = torch.nn.functional.pad(x.reshape(-1, n), (pad, n_fft))
    window = torch.hann_window(n_fft, dtype=x.dtype)
    spec = torch.stft(flat, n_fft, hop_length=hop, window=window, center=False, return_complex=True)
    return spec[:, : n_fft // 2, :n_frames].reshape(*shape, n_fft // 2, n_frames)


def stft_features(audio, *, n_fft: int = 256, hop: int = 128, n_channels: int = 4, phase: str = "absolute") -> torch.Tensor:
    """Magnitude and phase maps of multichannel audio.

    Parameters
    ----------
    audio : array or tensor ``(C, n)`` or ``(B, C, n)``, with ``C == n_channels``.
    n_fft : window and DFT length in samples (even); ``hop``: frame step in samples.
    phase : ``"absolute"`` (the paper: the phase of each channel) or ``"relative"`` (the phase of
        channel ``c > 0`` relative to channel 0, ``angle(X_c conj(X_1))``; map ``C`` keeps the
        absolute phase of channel 0). For FOA a plane wave gives a relative phase of 0 or pi,
        the sign of the direction component, which the absolute phases hide in a difference.

    Returns
    -------
    float32 tensor ``(2C, T, F)`` or ``(B, 2C, T, F)`` with ``T = n // hop`` and ``F = n_fft // 2``.
    """
    x = torch.as_tensor(np.asarray(audio) if not torch.is_tensor(audio) else audio, dtype=torch.float32)
    if x.ndim not in (2, 3):
        raise ValueError(f"audio must be (C, n) or (B, C, n), got shape {tuple(x.shape)}")
    if x.shape[-2] != n_channels:
        raise ValueError(f"expected {n_channels} channels (FOA: W, Y, Z, X), got {x.shape[-2]}")
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
    batched = x.ndim == 3
    x = x if batched else x[None]
    spec = aligned_stft(x, n_fft, hop).transpose(2, 3)  # (B, C, T, F)
    if phase == "relative":
        angles = torch.cat([spec[:, :1].angle(), (spec[:, 1:] * spec[:, :1].conj()).angle()], dim=1)
    else:
        angles = spec.angle()
    feats = torch.cat([spec.abs(), angles], dim=1)  # (B, 2C, T, F)
    return feats if batched else feats[0]


class FeatureScaler:
    """Standardise each feature map and frequency bin (the paper's per-bin ``StandardScaler``).

    ``fit(feats)`` with ``feats (N, 2C, T, F)`` sets ``mean_`` and ``scale_`` of shape ``(2C, 1, F)``.
    """

    def fit(self, feats: torch.Tensor) -> "FeatureScaler":
        if feats.ndim != 4:
            raise ValueError(f"fit expects (N, 2C, T, F) features, got shape {tuple(feats.shape)}")
        self.mean_ = feats.mean(dim=(0, 2)).unsqueeze(1)  # (2C, 1, F)
        self.scale_ = feats.std(dim=(0, 2)).clamp_min(1e-6).unsqueeze(1)
        return self

    def transform(self, feats: torch.Tensor) -> torch.Tensor:
        if not hasattr(self, "mean_"):
            raise RuntimeError("FeatureScaler is not fitted; call fit(features) first")
        if feats.shape[-3] != self.mean_.shape[0] or feats.shape[-1] != self.mean_.shape[-1]:
            raise ValueError(
                f"features with {feats.shape[-3]} maps x {feats.shape[-1]} bins do not match the "
                f"fitted {self.mean_.shape[0]} maps x {self.mean_.shape[-1]} bins"
            )
        return (feats - self.mean_) / self.scale_

    def state_dict(self) -> dict:
        return {"mean": self.mean_, "scale": self.scale_}

    @classmethod
    def from_state_dict(cls, state: dict) -> "FeatureScaler":
        scaler = cls()
        scaler.mean_, scaler.scale_ = state["mean"], state["scale"]
        return scaler
