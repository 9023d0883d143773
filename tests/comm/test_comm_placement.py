"""The device-placement check: on a CPU-only machine it fails where NCCL on a GPU would."""

import pytest
import torch

from companion import comm
from companion.comm import selftest as workers


def test_correctly_placed_worker_runs_unchanged():
    assert comm.launch(workers.placed_on_device, 2, strict_device=True) == [[3.0] * 3] * 2


def test_the_same_worker_without_the_check_also_runs():
    assert comm.launch(workers.forgets_the_device, 2) == [[0.0] * 3] * 2


@pytest.mark.parametrize("worker", [workers.forgets_the_device, workers.forgets_the_device_in_p2p])
def test_a_tensor_made_without_device_is_caught(worker):
    with pytest.raises(comm.WorkerError) as info:
        comm.launch(worker, 2, strict_device=True, timeout_s=60)
    assert "DevicePlacementError" in info.value.remote_traceback
    assert "device=comm.device()" in info.value.remote_traceback


def test_check_on_device_in_process():
    comm.check_on_device("all_reduce", torch.zeros(1), [torch.ones(2)])
    with pytest.raises(comm.DevicePlacementError, match="meta"):
        comm.check_on_device("all_reduce", [torch.zeros(1, device="meta")])


def test_strict_placement_restores_torch_and_dist():
    import torch.distributed as dist

    before = dist.all_reduce
    with comm.strict_placement():
        assert torch.zeros(1).device.type == "meta"
        assert dist.all_reduce is not before
    assert dist.all_reduce is before
    assert torch.zeros(1).device.type == "cpu"


def test_nccl_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="backend='gloo'"):
        comm.launch(workers.placed_on_device, 2, backend="nccl")
