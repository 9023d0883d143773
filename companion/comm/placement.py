"""Device placement: every tensor a worker hands to a collective must be on :func:`device`.

On a GPU cluster the process group is NCCL and :func:`device` is the rank's GPU, while a tensor
made without ``device=`` lands on the CPU, where NCCL rejects it. On a laptop under gloo both are
the CPU, so the same mistake passes unnoticed. :func:`strict_placement` makes it visible on a
CPU-only machine: it moves torch's *default* device to ``meta`` (a device with shapes but no
data), so a tensor or module created without naming a device is no longer on :func:`device`,
exactly as on a GPU, and it checks every tensor handed to a ``torch.distributed`` collective,
raising :class:`DevicePlacementError` that names the collective, the tensor and the fix.

``launch(..., strict_device=True)`` runs a worker under it. The default device is per thread
in PyTorch, so a worker's helper threads keep the CPU default; the collective check holds in
every thread.
"""

from __future__ import annotations

import contextlib
import functools

import torch
import torch.distributed as dist
import torch.distributed.distributed_c10d as c10d

from .devices import device

#: The ``torch.distributed`` functions whose tensor arguments are checked.
CHECKED_COLLECTIVES = (
    "all_reduce", "broadcast", "reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
    "reduce_scatter_tensor", "all_to_all", "all_to_all_single", "gather", "scatter", "send", "recv",
    "isend", "irecv", "batch_isend_irecv",
)

#: Where tensors made without ``device=`` land under :func:`strict_placement`.
POISONED_DEFAULT_DEVICE = "meta"


class DevicePlacementError(ValueError):
    """A tensor handed to a collective is not on :func:`~companion.comm.device`."""


def _tensors_in(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dist.P2POp):
        yield value.tensor
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors_in(item)


def check_on_device(collective: str, *values) -> None:
    """Raise :class:`DevicePlacementError` unless every tensor in ``values`` is on :func:`device`.

    ``values`` may hold tensors, lists or tuples of tensors and ``dist.P2POp`` objects.
    """
    expected = device()
    for tensor in (t for v in values for t in _tensors_in(v)):
        if tensor.device != expected:
            raise DevicePlacementError(
                f"dist.{collective} got a tensor of shape {tuple(tensor.shape)} on {tensor.device}, "
                f"but this rank's collectives run on {expected}: create it with "
                f"device=comm.device() or move it with .to(comm.device()) before the collective")


def _checked(name: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        check_on_device(name, *args, *kwargs.values())
        return fn(*args, **kwargs)

    wrapper.__wrapped_by_placement__ = True
    return wrapper


@contextlib.contextmanager
def strict_placement():
    """Within the block, fail fast on any tensor that is not on :func:`device` (see module doc)."""
    # Both namespaces: ``dist.P2POp`` accepts only the ``isend``/``irecv`` objects of c10d's own.
    modules = (dist, c10d)
    originals = {(m, name): getattr(m, name) for m in modules for name in CHECKED_COLLECTIVES}
    previous_default = torch.get_default_device()
    for name in CHECKED_COLLECTIVES:
        fn = getattr(c10d, name)
        if not getattr(fn, "__wrapped_by_placement__", False):
            wrapped = _checked(name, fn)
            for m in modules:
                setattr(m, name, wrapped)
    torch.set_default_device(POISONED_DEFAULT_DEVICE)
    try:
        yield
    finally:
        torch.set_default_device(previous_default)
        for (m, name), fn in originals.items():
            setattr(m, name, fn)
