"""The worker side on one process: schedules, the stale bookkeeping, the private buffer."""

from contextlib import contextmanager

import pytest
import torch
from torch import nn

from companion import lm
from companion.co2.outer import OuterConfig
from companion.co2.schedule import Schedule
from companion.co2.sync import OuterSync
from companion.co2.worker import RunSpec, TaskConfig, train_loop


class _Handle:
    def __init__(self, net, tensor):
        self.net, self.tensor, self.at_launch = net, tensor, tensor.clone()

    def wait(self):
        # a reduction reads its buffer until it completes: nothing may write it meanwhile
        assert torch.equal(self.tensor, self.at_launch), "buffer changed while in flight"
        self.tensor.mul_(self.net.world_size)  # every worker holds the same values: sum = p·x
        return True


class FakeNet:
    """A communicator for one process standing for ``world_size`` identical workers."""

    def __init__(self, world_size=1):
        self.world_size, self.launched = world_size, []

    def all_reduce(self, tensor, async_op=False):
        handle = _Handle(self, tensor)
        self.launched.append(handle)
        if async_op:
            return handle
        handle.wait()
        return None

    @contextmanager
    def compute(self, name="compute"):
        yield


class Scalar(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))


def _rounds(schedule, progress, world_size=1):
    """Move the live parameter by each entry of ``progress`` per round; return the anchors."""
    model, net = Scalar(), FakeNet(world_size)
    sync = OuterSync(model, net, world_size, schedule)
    anchors = []
    for step in progress:
        with torch.no_grad():
            model.w.add_(step)  # stands for τ inner steps
        sync.end_round(model)
        anchors.append(model.w.item())
        assert model.w.item() == sync.anchor.item()  # every round restarts from the anchor
    sync.finish(model)
    return anchors, model.w.item(), net


def test_sync_local_sgd_applies_each_round_at_once():
    # a_{t+1} = x̄_t: anchors 1, 1+2, 3+3
    anchors, final, _ = _rounds(Schedule.local_sgd(4), [1.0, 2.0, 3.0])
    assert anchors == [1.0, 3.0, 6.0] and final == 6.0


def test_co2_applies_each_round_one_round_late():
    # round 0 starts at 0 and reaches 1; nothing stale yet, so a_1 = 0.
    # round 1 from 0 reaches 2; apply Δ_0 = 0 − 1: a_2 = 0 + 1 = 1.
    # round 2 from 1 reaches 4; apply Δ_1 = 0 − 2: a_3 = 1 + 2 = 3.
    # finish applies Δ_2 = 1 − 4: a = 3 + 3 = 6, the same total as synchronous local SGD.
    anchors, final, net = _rounds(Schedule.co2(4), [1.0, 2.0, 3.0])
    assert anchors == [0.0, 1.0, 3.0] and final == 6.0
    assert len(net.launched) == 3


def test_co2_penalty_scales_the_stale_update():
    cfg = OuterConfig(gap_penalty=2.0)
    anchors, final, _ = _rounds(Schedule.co2(4, cfg), [1.0, 1.0])
    # a_2 = 0 + 1/2; finish: Δ_1 = 0 − 1 from anchor 0 → a = 0.5 + 0.5
    assert anchors == [0.0, 0.5] and final == 1.0


def test_reduction_buffer_is_private():
    model, net = Scalar(), FakeNet()
    sync = OuterSync(model, net, 1, Schedule.co2(2))
    with torch.no_grad():
        model.w.add_(1.0)
    sync.end_round(model)
    buffer = net.launched[0].tensor
    assert buffer.untyped_storage().data_ptr() != model.w.untyped_storage().data_ptr()
    with torch.no_grad():
        model.w.add_(5.0)  # keep training while the reduction is in flight
    sync.finish(model)  # _Handle.wait asserts the buffer did not change


def test_world_average_is_divided_back():
    # two identical workers: the sum is 2x, the average x, so the anchor follows x
    anchors, final, _ = _rounds(Schedule.local_sgd(1), [0.5, 0.5], world_size=2)
    assert anchors == [0.5, 1.0] and final == 1.0


def test_data_parallel_over_several_workers_needs_ddp():
    task = TaskConfig(batch_size=2, seq_len=8, d_model=16, n_layers=1, n_heads=2)
    model = task.model()
    batches = lm.token_batches(task.source(), task.batch_size, task.seq_len, seed=0)
    with pytest.raises(ValueError, match="wrapped in DDP"):
        train_loop(model, task.optimizer(model), batches, FakeNet(2), schedule=Schedule.data_parallel(),
                   n_steps=2, world_size=2)


def test_train_loop_local_sgd_of_one_worker_is_plain_training():
    task = TaskConfig(batch_size=2, seq_len=8, d_model=16, n_layers=1, n_heads=2)
    src = task.source()

    def losses(schedule):
        model = task.model()
        opt = task.optimizer(model)
        batches = lm.token_batches(src, task.batch_size, task.seq_len, seed=0)
        if schedule is None:
            out = []
            for _ in range(6):
                opt.zero_grad()
                loss = lm.lm_loss(model, next(batches))
                loss.backward()
                opt.step()
                out.append(loss.item())
            return out
        out, _, _ = train_loop(model, opt, batches, FakeNet(), schedule=schedule, n_steps=6,
                            world_size=1)
        return out

    plain = losses(None)
    assert losses(Schedule.data_parallel()) == pytest.approx(plain, rel=1e-5)
    assert losses(Schedule.local_sgd(3)) == pytest.approx(plain, rel=1e-4)


@pytest.mark.parametrize("call, match", [
    (lambda: Schedule.co2(0), "local_steps"),
    (lambda: Schedule("co2", -3), "local_steps"),
    (lambda: Schedule("data_parallel", 4), "local_steps must be 1"),
    (lambda: Schedule("gossip", 2), "method"),
    (lambda: Schedule.co2(4, OuterConfig(gap_penalty=0.5)), "gap_penalty"),
    (lambda: Schedule.local_sgd(4, OuterConfig(clip_threshold=-1.0)), "clip_threshold"),
    (lambda: RunSpec(Schedule.co2(4), 10), "multiple"),
    (lambda: RunSpec(Schedule.co2(4), 0), "n_steps"),
    (lambda: OuterSync(Scalar(), FakeNet(), 1, Schedule.data_parallel()), "data-parallel"),
    (lambda: TaskConfig(batch_size=0), "batch_size"),
    (lambda: RunSpec(Schedule.data_parallel(), 4, bucket_cap_mb=0), "bucket_cap_mb"),
    (lambda: RunSpec(Schedule.data_parallel(), 4, bucket_cap_mb=float("nan")), "bucket_cap_mb"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
