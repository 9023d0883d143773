"""Tensors for training and evaluation: features and frame labels of a list of scenes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from companion.seld.features import FeatureScaler, stft_features
from companion.seld.scenes import SceneConfig, make_scenes


@dataclass
class SeldData:
    """``feats (N, 2C, T, F)`` float32 (standardised once a scaler is applied), ``sed (N, T, K)``
    float32 0/1, ``doa (N, T, K, 3)`` float32 unit vectors (zero where inactive), ``fps`` frames/s."""

    feats: torch.Tensor
    sed: torch.Tensor
    doa: torch.Tensor
    fps: float

    def __len__(self) -> int:
        return self.feats.shape[0]

    def flat_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """Reference activity ``(N*T, K)`` bool and DOA ``(N*T, K, 3)``, scenes concatenated."""
        K = self.sed.shape[-1]
        return self.sed.reshape(-1, K).numpy() > 0.5, self.doa.reshape(-1, K, 3).numpy()


def scenes_to_data(scenes, *, n_fft: int = 256, phase: str = "absolute") -> SeldData:
    """Features (unscaled) and labels of rendered scenes that share one ``SceneConfig``.

    ``phase``: see :func:`companion.seld.features.stft_features`."""
    config = scenes[0].config
    if any(s.config != config for s in scenes):
        raise ValueError("all scenes must share one SceneConfig (sample rate, hop, classes)")
    audio = torch.as_tensor(np.stack([s.audio for s in scenes]))  # (N, 4, n)
    feats = stft_features(audio, n_fft=n_fft, hop=config.hop, phase=phase)
    sed = torch.as_tensor(np.stack([s.sed for s in scenes]), dtype=torch.float32)
    doa = torch.as_tensor(np.stack([s.doa for s in scenes]), dtype=torch.float32)
    if feats.shape[2] != sed.shape[1]:
        raise ValueError(f"{feats.shape[2]} feature frames but {sed.shape[1]} label frames; check n_fft and hop")
    return SeldData(feats, sed, doa, config.frames_per_second)


def make_data(n_scenes: int, config: SceneConfig, seed: int, *, scaler: FeatureScaler | None = None, n_fft: int = 256, phase: str = "absolute"):
    """Synthesise ``n_scenes`` scenes and return ``(data, scaler)``, standardised.

    With ``scaler=None`` a new scaler is fitted on these scenes (a training split); pass the
    training split's scaler for validation and test splits.
    """
    data = scenes_to_data(make_scenes(n_scenes, config, seed), n_fft=n_fft, phase=phase)
    if scaler is None:
        scaler = FeatureScaler().fit(data.feats)
    data.feats = scaler.transform(data.feats)
    return data, scaler
