"""SELDnet's training loss: binary cross-entropy for detection plus weighted MSE for direction.

    L = BCE(sed) + doa_weight * MSE(doa)

- ``masked=False`` (the paper): the MSE runs over every class and frame; an inactive class
  has target (0, 0, 0), so the DOA head is also taught to output zeros when nothing sounds.
- ``masked=True`` (DCASE2020 baseline onwards): the MSE averages only over (frame, class)
  pairs that are active in the reference, so the DOA head is free where nothing sounds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DOA_WEIGHT = 50.0  # the released code's loss_weights = [1, 50]


def seld_loss(sed_logits, doa_pred, sed_target, doa_target, *, doa_weight: float = DOA_WEIGHT, masked: bool = False):
    """Return ``(total, bce, mse)`` scalar tensors.

    Shapes: ``sed_logits, sed_target (B, T, K)``; ``doa_pred, doa_target (B, T, K, 3)``;
    ``doa_target`` is zero for inactive classes.
    """
    if sed_logits.shape != sed_target.shape or doa_pred.shape != doa_target.shape:
        raise ValueError(
            f"shape mismatch: sed {tuple(sed_logits.shape)} vs {tuple(sed_target.shape)}, "
            f"doa {tuple(doa_pred.shape)} vs {tuple(doa_target.shape)}"
        )
    if doa_pred.shape[:-1] != sed_logits.shape or doa_pred.shape[-1] != 3:
        raise ValueError(f"doa must be sed's shape + (3,), got {tuple(doa_pred.shape)} and {tuple(sed_logits.shape)}")
    bce = F.binary_cross_entropy_with_logits(sed_logits, sed_target.float())
    sq = (doa_pred - doa_target) ** 2  # (B, T, K, 3)
    if masked:
        mask = sed_target.float().unsqueeze(-1)  # (B, T, K, 1)
        mse = (sq * mask).sum() / (3 * mask.sum()).clamp_min(1.0)
    else:
        mse = sq.mean()
    return bce + doa_weight * mse, bce, mse
