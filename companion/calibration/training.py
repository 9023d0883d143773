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


def _check_int(name: str, value, *, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is a (NumPy) integer >= ``minimum``, else ``ValueError``.
    ``bool`` is refused although Python counts it as an integer: ``hidden=(True,)`` is a typo."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _init_(model: nn.Sequential, gen: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` initialisation, drawn from the local generator ``gen``.

    The default (Kaiming-uniform with ``a = sqrt(5)``, and the same bound for the bias) is
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for every entry; drawing it here keeps torch's global
    generator untouched, so fitting a model never changes anyone else's random numbers.
    """
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.uniform_(-bound, bound, generator=gen)
                layer.bias.uniform_(-bound, bound, generator=gen)


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
    lr_schedule : {"constant", "cosine"}
        ``"cosine"`` decays the step size to zero over ``epochs`` (per step), so that a Mixup run,
        whose loss is noisy from batch to batch, settles at the end instead of wandering.
    seed : int
        Seeds the initialisation, the batch order and the mixing weights.
    dtype : {"float32", "float64"}
        The network's floating-point type. In float32, a few hundred full-batch steps on noisy
        labels turn the last-bit differences between two CPUs' kernels into different test
        predictions; in float64 those differences stay far below any metric's resolution, so a
        stored result can be recomputed on another machine.

    Attributes
    ----------
    model_ : torch.nn.Sequential
    train_loss_ : float
        Mean training loss of the last epoch (the Mixup loss for Mixup).
    epochs_run_ : int
    loss_history_ : list of float
        Mean training loss of every epoch run (the training curve).
    final_lr_ : float
        The step size after the last step (0 at the end of a full cosine schedule).
    """

    def __init__(self, n_classes: int, *, hidden: tuple[int, ...] = (128, 128), epochs: int = 200,
                 lr: float = 1e-3, batch_size: int = 500, mixup_alpha: float | None = None,
                 mix_size: int = 2, stop_loss: float | None = 1e-3, lr_schedule: str = "constant",
                 seed: int = 0, dtype: str = "float32") -> None:
        self.n_classes = n_classes
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.mixup_alpha = mixup_alpha
        self.mix_size = mix_size
        self.stop_loss = stop_loss
        self.lr_schedule = lr_schedule
        self.seed = seed
        self.dtype = dtype

    def _validate(self, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        _check_int("n_classes", self.n_classes, minimum=2)
        if self.mixup_alpha is not None:
            check_mixup_params(self.mixup_alpha, self.mix_size)
        _check_int("epochs", self.epochs)
        _check_int("batch_size", self.batch_size)
        if isinstance(self.hidden, (int, np.integer)) or len(tuple(self.hidden)) == 0:
            raise ValueError(f"hidden must be a non-empty tuple of layer widths such as (128, 128), "
                             f"got {self.hidden!r}")
        for width in self.hidden:
            _check_int("every entry of hidden", width)
        lr = self.lr
        if isinstance(lr, bool) or not isinstance(lr, (float, int, np.floating, np.integer)) \
                or not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive finite float such as 1e-3, got {lr!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}")
        if self.stop_loss is not None and not (np.isfinite(self.stop_loss) and self.stop_loss > 0):
            raise ValueError(f"stop_loss must be None or a positive float, got {self.stop_loss!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        x = np.asarray(x, dtype=self.dtype)
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

    def fit(self, x, y, mix_groups=None) -> "MLPClassifier":
        """Train on ``x`` ``(N, d)`` and integer labels ``y`` ``(N,)``; returns ``self``.

        ``mix_groups`` ``(N,)`` (Mixup only): integer group ids; a mixture then combines points of
        one group only (``y // 2`` on the warm-up family is the chapter's within-pair d-Mixup).
        """
        xt, yt = self._validate(x, y)
        if mix_groups is not None:
            if self.mixup_alpha is None:
                raise ValueError("mix_groups restricts Mixup's mixtures; it needs mixup_alpha (got None, "
                                 "i.e. ERM)")
            mix_groups = np.asarray(mix_groups)
            if mix_groups.shape != (xt.shape[0],) or mix_groups.dtype.kind not in "iu":
                raise ValueError(f"mix_groups must be {xt.shape[0]} integer group ids, got "
                                 f"{mix_groups.dtype} of shape {mix_groups.shape}")
        gen = torch.Generator().manual_seed(int(self.seed))
        rng = np.random.default_rng(int(self.seed))
        # nn.Linear draws a default init from torch's global generator as it is built; build it
        # inside fork_rng (which restores the global state) and re-draw from the local one
        with torch.random.fork_rng(devices=[]):
            self.model_ = _mlp(xt.shape[1], tuple(int(h) for h in self.hidden),
                               int(self.n_classes)).to(getattr(torch, self.dtype))
        _init_(self.model_, gen)
        self.loss_history_ = []
        opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr)
        n_batches = -(-xt.shape[0] // int(self.batch_size))
        sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(self.epochs) * n_batches)
                 if self.lr_schedule == "cosine" else None)
        onehot = nn.functional.one_hot(yt, int(self.n_classes)).to(xt.dtype)
        n = xt.shape[0]
        self.model_.train()
        for epoch in range(int(self.epochs)):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for start in range(0, n, int(self.batch_size)):
                idx = order[start:start + int(self.batch_size)]
                xb, tb = xt[idx], onehot[idx]
                if self.mixup_alpha is not None:
                    groups = None if mix_groups is None else mix_groups[idx.numpy()]
                    xb, tb = mix_batch(xb, tb, alpha=self.mixup_alpha, mix_size=self.mix_size, rng=rng,
                                       groups=groups)
                # cross-entropy against a (possibly soft) target; equals the paper's
                # sum_i w_i CE(out, y_perm_i) because CE is linear in the target
                loss = -(tb * torch.log_softmax(self.model_(xb), dim=1)).sum(dim=1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                total += loss.item() * idx.shape[0]
            self.train_loss_ = total / n
            self.loss_history_.append(self.train_loss_)
            self.epochs_run_ = epoch + 1
            if self.mixup_alpha is None and self.stop_loss is not None \
                    and self.train_loss_ < self.stop_loss:
                break
        self.final_lr_ = float(opt.param_groups[0]["lr"])
        self.model_.eval()
        return self

    def decision_function(self, x) -> np.ndarray:
        """Logits of shape ``(N, k)`` as float64."""
        if not hasattr(self, "model_"):
            raise ValueError("this MLPClassifier is not fitted yet; call fit first")
        x = np.asarray(x, dtype=self.dtype)
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
