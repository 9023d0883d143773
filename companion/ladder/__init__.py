"""Ladder Residual: change the model so that tensor-parallel communication overlaps compute.

- :mod:`~companion.ladder.model` -- :class:`Decoder`, one forward for the standard and the Ladder
  residual stream and for parallel (GPT-J / PaLM) blocks, on one rank or a tensor-parallel shard;
- :mod:`~companion.ladder.sharding` -- Megatron column/row sharding of its weights and back;
- :mod:`~companion.ladder.communicators` -- the all-reduce interface, the no-communication one and
  the one on PyTorch's functional collectives (waited at first use);
- :mod:`~companion.ladder.dtensor_tp` -- the same sharding through ``parallelize_module``
  (``ColwiseParallel``/``RowwiseParallel``), checked against the hand-sharded model.
"""

from companion.ladder.communicators import FunctionalCollectives, NoCommunication
from companion.ladder.model import Decoder, KVCache, all_reduces_per_forward, reads_stale_stream
from companion.ladder.sharding import (
    TP_PLAN,
    gather_model,
    gather_state_dicts,
    shard_model,
    shard_state_dict,
)

__all__ = [
    "Decoder",
    "KVCache",
    "reads_stale_stream",
    "all_reduces_per_forward",
    "NoCommunication",
    "FunctionalCollectives",
    "TP_PLAN",
    "shard_state_dict",
    "gather_state_dicts",
    "shard_model",
    "gather_model",
]
