"""Fragments: the groups of layers that Streaming DiLoCo synchronises one at a time.

A model with ``L`` transformer blocks (``model.blocks``) is cut into ``P`` fragments of ``L / P``
blocks each. *Strided* (the paper's default) puts block ``l`` in fragment ``l mod P``;
*sequential* puts it in fragment ``l // (L / P)``. Parameters outside the blocks ride along with
their neighbours: those registered before the blocks (embeddings) join the fragment of block 0,
those after them (final norm, head) join the fragment of block ``L - 1``. So the fragments
partition the parameters exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

PATTERNS = ("strided", "sequential")


@dataclass
class Fragment:
    """One fragment: its index, its block indices and its parameters (in ``model.named_parameters`` order)."""

    index: int
    layers: tuple[int, ...]
    names: tuple[str, ...]
    params: list[nn.Parameter] = field(repr=False)

    @property
    def numel(self) -> int:
        """Number of scalars in the fragment."""
        return sum(p.numel() for p in self.params)


def layer_assignment(n_layers: int, n_fragments: int, pattern: str = "strided") -> list[tuple[int, ...]]:
    """Block indices of each fragment: a list of ``n_fragments`` tuples that partition ``range(n_layers)``."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {PATTERNS}, got {pattern!r}")
    if not isinstance(n_fragments, int) or n_fragments < 1:
        raise ValueError(f"n_fragments must be a positive int, got {n_fragments!r}")
    if n_layers % n_fragments:
        raise ValueError(
            f"n_layers={n_layers} is not divisible by n_fragments={n_fragments}; fragments hold "
            f"equal numbers of layers, so choose P among the divisors of {n_layers}"
        )
    size = n_layers // n_fragments
    if pattern == "strided":
        return [tuple(range(p, n_layers, n_fragments)) for p in range(n_fragments)]
    return [tuple(range(p * size, (p + 1) * size)) for p in range(n_fragments)]


def make_fragments(model: nn.Module, n_fragments: int, *, pattern: str = "strided") -> list[Fragment]:
    """Cut ``model`` (which must have an ``nn.ModuleList`` called ``blocks``) into fragments."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise ValueError("model must have a non-empty nn.ModuleList attribute `blocks` to cut into fragments")
    assignment = layer_assignment(len(blocks), n_fragments, pattern)
    fragment_of_layer = {layer: p for p, layers in enumerate(assignment) for layer in layers}
    owner: dict[int, int] = {}  # id(parameter) -> fragment
    for layer, block in enumerate(blocks):
        for prm in block.parameters():
            owner[id(prm)] = fragment_of_layer[layer]
    names: list[list[str]] = [[] for _ in range(n_fragments)]
    params: list[list[nn.Parameter]] = [[] for _ in range(n_fragments)]
    seen_block = False
    for name, prm in model.named_parameters():
        if id(prm) in owner:
            seen_block = True
            p = owner[id(prm)]
        else:  # outside the blocks: before them -> with block 0, after them -> with block L-1
            p = fragment_of_layer[len(blocks) - 1] if seen_block else fragment_of_layer[0]
        names[p].append(name)
        params[p].append(prm)
    return [Fragment(p, assignment[p], tuple(names[p]), params[p]) for p in range(n_fragments)]


def flatten(params: list[torch.Tensor]) -> torch.Tensor:
    """A fresh fp32 1-D copy of ``params`` concatenated (``parameters_to_vector``): never a view of them."""
    return parameters_to_vector([p.detach() for p in params]).to(torch.float32)


def assign_(params: list[torch.Tensor], flat: torch.Tensor) -> None:
    """Set ``params`` to the values of the 1-D ``flat`` (inverse of :func:`flatten`).

    ``vector_to_parameters`` makes each parameter a view of the vector it is given; it is given
    a private copy of ``flat``, so later writes to ``flat`` never reach the model.
    """
    n = sum(p.numel() for p in params)
    if flat.ndim != 1 or flat.numel() != n:
        raise ValueError(f"flat has shape {tuple(flat.shape)} but the parameters hold {n} values: "
                         "pass the 1-D vector flatten() made of these parameters")
    with torch.no_grad():
        vector_to_parameters(flat.detach().to(params[0].dtype).clone(), params)
