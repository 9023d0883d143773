"""Which round's work lands where: the anchors of a one-parameter model, round by round."""

from __future__ import annotations

import torch
from torch import nn

from .schedule import Schedule
from .sync import OuterSync, SoloNet


def trace_anchors(schedule: Schedule, moves) -> list:
    """Anchors after each round (and after the final drain) of a single worker.

    The worker's one parameter starts at 0, and in round ``t`` its τ inner steps move it by
    ``moves[t]`` from wherever the round started. Returns ``len(moves) + 1`` floats: the anchor
    after each :meth:`OuterSync.end_round`, then after :meth:`OuterSync.finish`.
    """
    moves = [float(m) for m in moves]
    if not moves:
        raise ValueError("moves is empty: give the distance the worker travels in each round")
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    sync = OuterSync(model, SoloNet(), 1, schedule)
    anchors = []
    for move in moves:
        with torch.no_grad():
            model.weight.add_(move)  # stands for the τ inner steps of this round
        sync.end_round(model)
        anchors.append(model.weight.item())
    sync.finish(model)
    anchors.append(model.weight.item())
    return anchors


def anchor_path(pseudo_gradients, *, outer_lr: float, outer_momentum: float, clip=None,
                clip_threshold: float | None = None) -> torch.Tensor:
    """Anchors after each outer step fed ``pseudo_gradients`` (a list of equal-shape tensors).

    ``clip(m, clip_threshold)`` is called on the momentum after each update when given: pass
    :func:`companion.co2.outer.clip_outer_momentum_` or, to see the public code's behaviour,
    :func:`companion.co2.outer.reference_code_clip`. Returns shape ``(rounds, *delta.shape)``;
    the anchor starts at zero.
    """
    if not pseudo_gradients:
        raise ValueError("pseudo_gradients is empty")
    anchor = torch.zeros_like(pseudo_gradients[0])
    momentum = torch.zeros_like(anchor)
    path = []
    for delta in pseudo_gradients:
        momentum.mul_(outer_momentum).add_(delta)
        if clip is not None:
            clip(momentum, clip_threshold)
        anchor.sub_(momentum, alpha=outer_lr)
        path.append(anchor.clone())
    return torch.stack(path)
