"""A small MLP classifier trained by ERM (to interpolation) or by (d-)Mixup, scikit-learn style.

Mini-batch Adam on CPU, float32, deterministic for a ``seed``. ``decision_function``
returns logits (what temperature scaling needs); ``predict_proba`` their softmax.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from companion.calibration.mixup import check_mixup_params, mix_batch


def _mlp(in_dim: int, hidden: tuple[int, ...], n_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    layers.append(nn.Linear(in_dim, n_classes))
    return nn.Sequential(*layers)


class MLPClassifier:
    """ReLU MLP trained with cross-entropy (``mixup_alpha=None``) or Mixup.

    Parameters
    ----------
    n_classes : int
        Number of classes ``k`` (given, not read off the labels: noisy labels may miss a class).
    hidden : tuple of int
        Widths of the hidden layers.
    epochs : int
        Maximum passes over the training set.
    lr, batch_size : Adam step size and mini-batch size (the paper's code: 1e-3 and 500).
    mixup_alpha : float or None
        ``None`` trains by ERM; a float trains by Mixup with Dirichlet(``alpha``) weights.
    mix_size : int
        Points per mixture (2: Mixup; ``d + 1``: d-Mixup). Ignored for ERM.
    stop_loss : float or None
        ERM only: stop once the mean training loss of an epoch falls below this, i.e. once the
        network interpolates the training set. ``None`` runs all ``epochs``.
    seed : int
        Seeds the initialisation, the batch order and the mixing weights.

    Attributes
    ----------
    model_ : torch.nn.Sequential
    train_loss_ : float
        Mean training loss of the last epoch (the Mixup loss for Mixup).
    epochs_run_ : int
    """

    def __init__(self, n_classes: int, *, hidden: tuple[int, ...] = (128, 128), epochs: int = 200,
                 lr: float = 1e-3, batch_size: int = 500, mixup_alpha: float | None = None,
                 mix_size: int = 2, stop_loss: float | None = 1e-3, seed: int = 0) -> None:
        self.n_classes = n_classes
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.mixup_alpha = mixup_alpha
        self.mix_size = mix_size
        self.stop_loss = stop_loss
        self.seed = seed

    def _validate(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, (int, np.integer)) \
                or self.n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {self.n_classes!r}")
        if self.mixup_alpha is not None:
            check_mixup_params(self.mixup_alpha, self.mix_size)
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"x must be a non-empty (N, d) array, got shape {x.shape}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},), got {y.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("x contains NaN or inf")
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"y must be integers in [0, {self.n_classes})")
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    def fit(self, x, y) -> "MLPClassifier":
        """Train on ``x`` ``(N, d)`` and integer labels ``y`` ``(N,)``; returns ``self``."""
        xt, yt = self._validate(x, y)
        gen = torch.Generator().manual_seed(int(self.seed))
        torch.manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        self.model_ = _mlp(xt.shape[1], tuple(self.hidden), int(self.n_classes))
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        onehot = nn.functional.one_hot(yt, int(self.n_classes)).float()
        n = xt.shape[0]
        self.model_.train()
        for epoch in range(self.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                xb, tb = xt[idx], onehot[idx]
                if self.mixup_alpha is not None:
                    xb, tb = mix_batch(xb, tb, alpha=self.mixup_alpha, mix_size=self.mix_size, rng=rng)
                # cross-entropy against a (possibly soft) target; equals the paper's
                # sum_i w_i CE(out, y_perm_i) because CE is linear in the target
                loss = -(tb * torch.log_softmax(self.model_(xb), dim=1)).sum(dim=1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * idx.shape[0]
            self.train_loss_ = total / n
            self.epochs_run_ = epoch + 1
            if self.mixup_alpha is None and self.stop_loss is not None and self.train_loss_ < self.stop_loss:
                break
        self.model_.eval()
        return self

    def decision_function(self, x) -> np.ndarray:
        """Logits of shape ``(N, k)`` as float64."""
        if not hasattr(self, "model_"):
            raise ValueError("this MLPClassifier is not fitted yet; call fit first")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.model_[0].in_features:
            raise ValueError(f"x must have shape (N, {self.model_[0].in_features}), got {x.shape}")
        with torch.no_grad():
            return self.model_(torch.from_numpy(x)).double().numpy()

    def predict_proba(self, x) -> np.ndarray:
        """Softmax of the logits, ``(N, k)``."""
        z = self.decision_function(x)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)
