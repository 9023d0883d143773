"""A synthetic language whose entropy rate is known exactly: a random Markov source.

A source of order ``k`` over ``V`` tokens draws, for every context of ``k`` tokens, a next-token
distribution from a symmetric Dirichlet. Because the whole law is known, so is the best loss any
model can reach: the entropy rate, in nats per token. Every loss curve of the book can therefore
draw its true floor.

Contexts are indexed in base ``V`` with the oldest token most significant:
``ctx = a_1 V^{k-1} + ... + a_k``, and the next context after token ``x`` is ``(ctx V + x) mod V^k``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from companion.seeding import as_generator

#: Largest number of contexts (``vocab_size ** order``) we agree to tabulate: 2**22 rows of V floats.
MAX_CONTEXTS = 2**22


def _entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with ``0 log 0 = 0``."""
    logp = np.log(np.where(p > 0, p, 1.0))
    return -(p * logp).sum(axis=axis)


class MarkovSource:
    """A random Markov source of order ``order`` over ``vocab_size`` tokens.

    Parameters
    ----------
    vocab_size : int
        Number of distinct tokens ``V`` (>= 2).
    order : int
        How many previous tokens the next one depends on (``k`` >= 1).
    concentration : float
        Dirichlet concentration of the bigram rows (of every row if ``backoff`` is None). Small
        values (0.1-0.5) give peaked rows, so a low entropy rate that a model has to *learn* to
        reach; large values approach uniform.
    seed : int
        Seed of the transition table (the language itself, not the samples drawn from it).
    backoff : float or None, keyword-only
        Strength ``s`` of the hierarchical prior (see :meth:`_draw_table`): the rows of a context
        of ``j`` tokens scatter around the rows of its last ``j - 1`` tokens, the less the larger
        ``s``. ``None`` draws every row independently from a symmetric Dirichlet.

    Attributes
    ----------
    transitions : ndarray of shape (V**k, V)
        ``transitions[ctx, x] = P(x | ctx)``, float64, rows summing to one.
    stationary : ndarray of shape (V**k,)
        Stationary law ``pi`` of the context chain.
    entropy_rate : float
        ``sum_ctx pi(ctx) H(P(. | ctx))`` in nats per token: the lowest achievable mean
        next-token cross-entropy once a model sees at least ``k`` previous tokens.

    Examples
    --------
    >>> src = MarkovSource(vocab_size=8, order=1, concentration=1.0, seed=0)
    >>> 0.0 < src.entropy_rate < float(np.log(8))
    True
    """

    def __init__(
        self,
        vocab_size: int = 32,
        order: int = 2,
        concentration: float = 0.3,
        seed: int = 0,
        *,
        backoff: float | None = 2.0,
    ):
        if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 2:
            raise ValueError(f"vocab_size must be an integer >= 2, got {vocab_size!r}")
        if not isinstance(order, (int, np.integer)) or order < 1:
            raise ValueError(f"order must be an integer >= 1, got {order!r}")
        if not np.isfinite(concentration) or concentration <= 0:
            raise ValueError(f"concentration must be a positive finite float, got {concentration!r}")
        if backoff is not None and (not np.isfinite(backoff) or backoff <= 0):
            raise ValueError(f"backoff must be None or a positive finite float, got {backoff!r}")
        n_contexts = int(vocab_size) ** int(order)
        if n_contexts > MAX_CONTEXTS:
            raise ValueError(
                f"vocab_size**order = {vocab_size}**{order} = {n_contexts} contexts exceeds "
                f"{MAX_CONTEXTS}; lower the order or the vocabulary"
            )
        self.vocab_size = int(vocab_size)
        self.order = int(order)
        self.concentration = float(concentration)
        self.seed = int(seed)
        self.backoff = None if backoff is None else float(backoff)
        table = self._draw_table(as_generator(self.seed))
        # Dirichlet draws with a small concentration can underflow to exact zeros; a floor keeps
        # every context reachable (an irreducible, aperiodic chain, so pi is unique).
        table = np.maximum(table, 1e-12)
        self.transitions = table / table.sum(axis=1, keepdims=True)
        self._cumulative = np.cumsum(self.transitions, axis=1)
        self._cumulative[:, -1] = 1.0
        self.stationary = self._stationary_law()
        self.entropy_rate = float(self.stationary @ _entropy(self.transitions))

    def __repr__(self) -> str:
        return (
            f"MarkovSource(vocab_size={self.vocab_size}, order={self.order}, "
            f"concentration={self.concentration}, seed={self.seed}, backoff={self.backoff})"
        )

    # ------------------------------------------------------------------ the exact law
    def _draw_table(self, rng: np.random.Generator) -> np.ndarray:
        """Transition rows ``(V**k, V)``, drawn level by level from Dirichlet laws.

        Without back-off every row is an independent symmetric ``Dirichlet(concentration)``: the
        next-token law then looks uniform to any model that ignores the oldest context token, and
        a small transformer sits on a long plateau before it finds the right attention pattern.
        With ``backoff = s`` the rows are hierarchical, as in a Dirichlet back-off language model:
        the bigram rows ``P_1(. | a)`` are symmetric ``Dirichlet(concentration)``, and a context of
        ``j`` tokens draws ``P_j(. | a_1..a_j) ~ Dirichlet(s P_{j-1}(. | a_2..a_j))``, so shorter
        contexts already carry most of the information and longer ones refine it.
        """
        V, k = self.vocab_size, self.order
        if self.backoff is None:
            return rng.dirichlet(np.full(V, self.concentration), size=V**k)
        table = rng.dirichlet(np.full(V, self.concentration), size=V)  # level 1: (V, V)
        for j in range(2, k + 1):
            parent = table[np.arange(V**j) % V ** (j - 1)]  # row of (a_2..a_j) for each (a_1..a_j)
            g = rng.gamma(np.maximum(self.backoff * parent, 1e-300))  # Dirichlet via normalised gammas
            table = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-300)
        return table

    def _stationary_law(self, tol: float = 1e-14, max_iter: int = 100_000) -> np.ndarray:
        """Power iteration on the context chain: ``pi'[a_2..a_k, x] = sum_{a_1} pi[a_1..a_k] P(x|a_1..a_k)``."""
        V, k = self.vocab_size, self.order
        n = V**k
        pi = np.full(n, 1.0 / n)
        for _ in range(max_iter):
            joint = pi[:, None] * self.transitions  # (V**k, V): law of (context, next token)
            new = joint.reshape(V, n).sum(axis=0)  # drop the oldest token a_1 -> (V**k,)
            if np.abs(new - pi).sum() < tol:
                return new / new.sum()
            pi = new
        raise RuntimeError(f"stationary law did not converge in {max_iter} power iterations")

    def conditional_entropy(self, n_context: int) -> float:
        """``H(X_n | X_0..X_{n-1})`` in nats for a stationary stream, given ``n_context = n`` tokens.

        Equals :attr:`entropy_rate` once ``n_context >= order``; below it, it is the difference of
        block entropies of the stationary law, ``H(n+1 tokens) - H(n tokens)``.
        """
        if n_context < 0:
            raise ValueError(f"n_context must be >= 0, got {n_context}")
        if n_context >= self.order:
            return self.entropy_rate
        return self._block_entropy(n_context + 1) - self._block_entropy(n_context)

    def _block_entropy(self, n: int) -> float:
        """Entropy of ``n <= order`` consecutive tokens of the stationary stream (nats)."""
        if n == 0:
            return 0.0
        V, k = self.vocab_size, self.order
        marginal = self.stationary.reshape((V,) * k).sum(axis=tuple(range(k - n)))
        return float(_entropy(marginal.ravel(), axis=0))

    def loss_floor(self, seq_len: int) -> float:
        """Lowest possible :func:`companion.lm.lm_loss` on sequences of ``seq_len`` tokens (nats).

        The loss averages the predictions of tokens ``1..L-1``; token ``t`` sees only ``t`` previous
        tokens, so the first ``order - 1`` predictions cannot reach the entropy rate.
        """
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2 to predict anything, got {seq_len}")
        return float(np.mean([self.conditional_entropy(min(t, self.order)) for t in range(1, seq_len)]))

    # ------------------------------------------------------------------ sampling
    def sample(self, n_seqs: int, seq_len: int, rng) -> torch.Tensor:
        """Draw ``n_seqs`` independent sequences of ``seq_len`` tokens, started from the stationary law.

        Parameters
        ----------
        rng : int or numpy.random.Generator
            Seed or generator of the samples.

        Returns
        -------
        torch.LongTensor of shape (n_seqs, seq_len)
        """
        if n_seqs < 1 or seq_len < 1:
            raise ValueError(f"n_seqs and seq_len must be >= 1, got n_seqs={n_seqs}, seq_len={seq_len}")
        rng = as_generator(rng)
        V, k = self.vocab_size, self.order
        n = V**k
        # 1. the first k tokens: one stationary context per sequence, unpacked into base-V digits
        ctx = rng.choice(n, size=n_seqs, p=self.stationary)
        out = np.empty((n_seqs, max(seq_len, k)), dtype=np.int64)
        for i in range(k):
            out[:, i] = (ctx // V ** (k - 1 - i)) % V
        # 2. the rest: inverse-CDF sampling from the row of each sequence's current context
        for t in range(k, seq_len):
            u = rng.random(n_seqs)
            x = (self._cumulative[ctx] < u[:, None]).sum(axis=1)
            x = np.minimum(x, V - 1)
            out[:, t] = x
            ctx = (ctx * V + x) % n
        return torch.from_numpy(out[:, :seq_len].copy())

    def log_prob(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact ``log P(x_t | previous k tokens)`` for ``t >= order``: shape (B, L - order), nats."""
        x = np.asarray(tokens, dtype=np.int64)
        if x.ndim != 2 or x.shape[1] <= self.order:
            raise ValueError(f"tokens must have shape (B, L) with L > order={self.order}, got {x.shape}")
        V, k = self.vocab_size, self.order
        ctx = np.zeros(x.shape[0], dtype=np.int64)
        for i in range(k):
            ctx = ctx * V + x[:, i]
        logp = np.empty((x.shape[0], x.shape[1] - k))
        for t in range(k, x.shape[1]):
            logp[:, t - k] = np.log(self.transitions[ctx, x[:, t]])
            ctx = (ctx * V + x[:, t]) % V**k
        return torch.from_numpy(logp)


def token_batches(
    src: MarkovSource, batch_size: int, seq_len: int, seed: int, rank: int = 0, world_size: int = 1
) -> Iterator[torch.Tensor]:
    """Infinite iterator of ``(batch_size, seq_len)`` LongTensors for worker ``rank`` of ``world_size``.

    Each rank draws from its own child of ``numpy.random.SeedSequence(seed)``, so ranks see
    independent (disjoint) streams, and the stream of ``(seed, rank, world_size)`` is the same in
    any process: a single-process reference can replay every worker's data.
    """
    if batch_size < 1 or seq_len < 2:
        raise ValueError(f"batch_size must be >= 1 and seq_len >= 2, got {batch_size}, {seq_len}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    child = np.random.SeedSequence(int(seed)).spawn(world_size)[rank]
    rng = np.random.default_rng(child)
    while True:
        yield src.sample(batch_size, seq_len, rng)
