"""The toy language-modelling task shared by the DiLoCo, CO2 and Ladder Residual chapters.

- :class:`MarkovSource` -- a random Markov language with an exactly known entropy rate (the loss floor);
- :func:`token_batches` -- per-rank infinite streams of token batches;
- :class:`GPTConfig`, :class:`GPT`, :class:`Block` -- a small pre-norm decoder-only transformer;
- :func:`lm_loss`, :func:`evaluate` -- next-token cross-entropy (nats) on a batch and on held-out data.
"""

from companion.lm.model import GPT, MLP, Block, CausalSelfAttention, GPTConfig
from companion.lm.source import MarkovSource, token_batches
from companion.lm.train import evaluate, lm_loss

__all__ = [
    "MarkovSource",
    "token_batches",
    "GPTConfig",
    "GPT",
    "Block",
    "CausalSelfAttention",
    "MLP",
    "lm_loss",
    "evaluate",
]
