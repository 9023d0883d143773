"""SELDnet (Adavanne et al., 2018): a convolutional recurrent network with a SED and a DOA head.

    features (B, 2C, T, F)
      -> 3 x [Conv 3x3 (64) -> BatchNorm -> ReLU -> MaxPool over frequency only -> Dropout]
      -> (B, T, 64 * F') -> 2 x bidirectional GRU, directions merged by product ('mul')
      -> SED branch: Linear(128) -> Dropout -> Linear(K) -> sigmoid      activity per class
      -> DOA branch: Linear(128) -> Dropout -> Linear(3K) -> tanh        (x, y, z) per class

Pooling only along frequency keeps the frame rate, so the network labels every input frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class SELDnetConfig:
    """Sizes of SELDnet. The widths default to the paper's (64 filters, 2 x 128 GRU, 128 FC);
    the input defaults to this chapter's 128 frequency bins of FOA (8 maps), the paper had 256."""

    n_classes: int = 10
    in_maps: int = 8  # 2C: magnitude and phase of the 4 FOA channels
    n_freq: int = 128  # F: frequency bins of the input (the paper had 256)
    conv_filters: int = 64  # P in the paper
    freq_pools: tuple[int, ...] = (8, 8, 2)  # the paper's [8, 8, 2]; the product must divide n_freq
    rnn_hidden: int = 128  # Q in the paper
    rnn_layers: int = 2
    fc_hidden: int = 128  # R in the paper
    dropout: float = 0.0  # the released code's default

    def __post_init__(self):
        prod = 1
        for p in self.freq_pools:
            prod *= p
        if self.n_freq % prod:
            raise ValueError(f"n_freq={self.n_freq} is not divisible by the product of freq_pools {self.freq_pools} ({prod})")
        if min(self.n_classes, self.in_maps, self.conv_filters, self.rnn_hidden, self.fc_hidden) < 1:
            raise ValueError("all sizes must be positive")

    @property
    def rnn_input(self) -> int:
        prod = 1
        for p in self.freq_pools:
            prod *= p
        return self.conv_filters * (self.n_freq // prod)


class BiGRUMul(nn.Module):
    """A bidirectional GRU layer whose two directions are multiplied (Keras ``merge_mode='mul'``)."""

    def __init__(self, n_in: int, hidden: int):
        super().__init__()
        self.hidden = hidden
        self.gru = nn.GRU(n_in, hidden, batch_first=True, bidirectional=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)  # (B, T, 2H)
        return out[..., : self.hidden] * out[..., self.hidden :]  # (B, T, H)


class SELDnet(nn.Module):
    """SELDnet. ``forward`` returns SED logits ``(B, T, K)`` and DOA vectors ``(B, T, K, 3)``.

    The paper's flat DOA output ``[x_1..x_K, y_1..y_K, z_1..z_K]`` is reshaped to ``(K, 3)``
    per frame. ``predict`` applies the sigmoid to the SED logits.
    """

    def __init__(self, config: SELDnetConfig = SELDnetConfig()):
        super().__init__()
        self.config = config
        blocks, maps = [], config.in_maps
        for pool in config.freq_pools:
            blocks += [
                nn.Conv2d(maps, config.conv_filters, kernel_size=3, padding=1),
                nn.BatchNorm2d(config.conv_filters),
                nn.ReLU(),
                nn.MaxPool2d(kernel_size=(1, pool)),  # (time, frequency): frequency only
                nn.Dropout(config.dropout),
            ]
            maps = config.conv_filters
        self.conv = nn.Sequential(*blocks)
        rnn_in = config.rnn_input
        self.rnn = nn.Sequential(*[BiGRUMul(rnn_in if i == 0 else config.rnn_hidden, config.rnn_hidden) for i in range(config.rnn_layers)])
        K, H, R = config.n_classes, config.rnn_hidden, config.fc_hidden
        # the paper's fully connected layers before each output have a linear activation
        self.sed_head = nn.Sequential(nn.Linear(H, R), nn.Dropout(config.dropout), nn.Linear(R, K))
        self.doa_head = nn.Sequential(nn.Linear(H, R), nn.Dropout(config.dropout), nn.Linear(R, 3 * K), nn.Tanh())

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        B, M, T, F = feats.shape
        if M != self.config.in_maps or F != self.config.n_freq:
            raise ValueError(f"expected (B, {self.config.in_maps}, T, {self.config.n_freq}) features, got {tuple(feats.shape)}")
        h = self.conv(feats)  # (B, P, T, F')
        h = h.permute(0, 2, 1, 3).reshape(B, T, -1)  # (B, T, P * F')
        h = self.rnn(h)  # (B, T, H)
        sed_logits = self.sed_head(h)  # (B, T, K)
        K = self.config.n_classes
        doa = self.doa_head(h).reshape(B, T, 3, K).transpose(2, 3)  # [x_1..x_K, y.., z..] -> (B, T, K, 3)
        return sed_logits, doa

    @torch.no_grad()
    def predict(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activity probabilities ``(B, T, K)`` and DOA vectors ``(B, T, K, 3)`` in eval mode."""
        was_training = self.training
        self.eval()
        logits, doa = self(feats)
        self.train(was_training)
        return torch.sigmoid(logits), doa

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def config_dict(self) -> dict:
        return asdict(self.config)
