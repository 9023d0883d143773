"""Temperature scaling: one positive scalar ``T`` divides the logits (Guo et al., 2017).

:class:`TemperatureScaler` fits ``log T`` by bounded Brent search to the minimum of the NLL on
held-out data. The NLL of ``softmax(z / T)`` is convex in ``1 / T``, hence unimodal in ``log T``,
so a bounded 1-D search reaches the minimum. :func:`lbfgs_recipe_temperature` is the recipe many
scripts copy (torch LBFGS on ``T`` itself, ``lr=0.01``, one ``step`` of ``max_iter=20``), kept to
show how little it can move ``T``. :class:`OracleTemperatureScaler` picks ``T`` against the true
posterior (the "oracle" temperature of Chidambaram & Ge, 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from companion.calibration._validation import check_labels, check_logits, check_probs

#: Search interval for log T: T from about 0.0025 to 8100, wide enough that the end points mean
#: "nearly one-hot" and "nearly uniform".
LOG_T_BOUNDS = (-6.0, 9.0)


def nll_at_temperature(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean cross-entropy of ``softmax(logits / T)`` against ``targets`` ``(N, k)`` (one-hot or soft)."""
    return float(-np.mean(np.sum(targets * log_softmax(logits / temperature, axis=1), axis=1)))


def _fit_log_temperature(logits: np.ndarray, targets: np.ndarray) -> tuple[float, bool]:
    res = minimize_scalar(lambda s: nll_at_temperature(logits, targets, float(np.exp(s))),
                          bounds=LOG_T_BOUNDS, method="bounded",
                          options={"xatol": 1e-9, "maxiter": 500})
    if not res.success:
        raise RuntimeError(f"temperature search did not converge: {res.message}")
    at_bound = min(abs(res.x - LOG_T_BOUNDS[0]), abs(res.x - LOG_T_BOUNDS[1])) < 1e-3
    return float(np.exp(res.x)), bool(at_bound)


class _BaseScaler:
    def _check_fitted(self) -> None:
        if not hasattr(self, "temperature_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")

    def predict_proba(self, logits) -> np.ndarray:
        """``softmax(logits / temperature_)``, shape ``(N, k)``."""
        self._check_fitted()
        z = check_logits(logits)
        if z.shape[1] != self.n_classes_:
            raise ValueError(f"fitted on {self.n_classes_} classes, got logits with {z.shape[1]}")
        return softmax(z / self.temperature_, axis=1)


class TemperatureScaler(_BaseScaler):
    """Fit one temperature ``T > 0`` minimising the NLL of ``softmax(logits / T)``.

    Attributes
    ----------
    temperature_ : float
        The fitted temperature.
    nll_ : float
        Mean NLL at ``temperature_`` on the fitting data.
    at_bound_ : bool
        True when the optimum sits at an end of :data:`LOG_T_BOUNDS`; at the upper end this means
        the data are best served by (nearly) uniform predictions.
    n_classes_ : int

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [4.0, 0.0]])
    >>> ts = TemperatureScaler().fit(z, np.array([0, 1, 1, 0]))
    >>> round(ts.temperature_, 3)
    3.641
    """

    def fit(self, logits, labels) -> "TemperatureScaler":
        """``logits`` ``(N, k)``, integer ``labels`` ``(N,)``; returns ``self``."""
        z = check_logits(logits)
        y = check_labels(labels, z.shape[0], z.shape[1])
        onehot = np.zeros_like(z)
        onehot[np.arange(z.shape[0]), y] = 1.0
        self.temperature_, self.at_bound_ = _fit_log_temperature(z, onehot)
        self.nll_ = nll_at_temperature(z, onehot, self.temperature_)
        self.n_classes_ = z.shape[1]
        return self


class OracleTemperatureScaler(_BaseScaler):
    """Pick ``T`` minimising ``E KL(posterior || softmax(logits / T))`` against a *known* posterior.

    Impractical by design: it shows the best any temperature can do, the quantity bounded in the
    chapter's proposition. ``fit(logits, posterior)`` with ``posterior`` of shape ``(N, k)``.
    """

    def fit(self, logits, posterior) -> "OracleTemperatureScaler":
        z = check_logits(logits)
        q = check_probs(posterior, name="posterior").astype(np.float64)
        if q.shape != z.shape:
            raise ValueError(f"shape mismatch: logits {z.shape} vs posterior {q.shape}")
        self.temperature_, self.at_bound_ = _fit_log_temperature(z, q)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = -np.mean(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), axis=1))
        self.kl_ = nll_at_temperature(z, q, self.temperature_) - float(entropy)
        self.n_classes_ = z.shape[1]
        return self


def lbfgs_recipe_temperature(logits, labels, *, init: float = 1.0, lr: float = 0.01,
                             max_iter: int = 20) -> float:
    """The common script recipe: ``torch.optim.LBFGS([T], lr, max_iter)``, one ``step``, no
    positivity constraint. Returns the temperature it stops at (it may be far from optimal)."""
    import torch

    z = torch.as_tensor(check_logits(logits))
    y = torch.as_tensor(check_labels(labels, z.shape[0], z.shape[1]))
    t = torch.nn.Parameter(torch.full((1,), float(init), dtype=torch.float64))
    opt = torch.optim.LBFGS([t], lr=lr, max_iter=max_iter)
    loss_fn = torch.nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(z / t, y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(t.detach()[0])


@dataclass(frozen=True)
class TemperatureSweep:
    """KL and NLL of ``softmax(logits / T)`` at each temperature ``T`` (arrays of shape ``(M,)``):
    ``kl`` against a known posterior, ``nll`` against sampled labels."""

    temperature: np.ndarray
    kl: np.ndarray
    nll: np.ndarray


def temperature_sweep(logits, posterior, labels, temperatures) -> TemperatureSweep:
    """Expected KL ``E KL(posterior || softmax(z / T))`` and test NLL at every temperature.

    The figure function behind the chapter's temperature slider: ``logits`` and ``posterior``
    ``(N, k)``, integer ``labels`` ``(N,)``, positive ``temperatures`` ``(M,)``.
    """
    z = check_logits(logits)
    q = check_probs(posterior, name="posterior").astype(np.float64)
    if q.shape != z.shape:
        raise ValueError(f"shape mismatch: logits {z.shape} vs posterior {q.shape}")
    y = check_labels(labels, z.shape[0], z.shape[1])
    t = np.atleast_1d(np.asarray(temperatures, dtype=np.float64))
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t) & (t > 0)):
        raise ValueError(f"temperatures must be a non-empty 1-D array of positive floats, got {temperatures!r}")
    onehot = np.zeros_like(z)
    onehot[np.arange(z.shape[0]), y] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.mean(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0), axis=1))
    kl = np.array([nll_at_temperature(z, q, tt) - entropy for tt in t])
    nll = np.array([nll_at_temperature(z, onehot, tt) for tt in t])
    return TemperatureSweep(temperature=t, kl=kl, nll=nll)
