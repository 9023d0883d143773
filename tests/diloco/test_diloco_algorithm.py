"""The outer step on a two-parameter model whose expected values are derived by hand."""

import pytest
import torch
import torch.nn as nn

from companion.diloco.algorithm import StreamingDiLoCo
from companion.diloco.reducers import LocalReducer, Pending, payload_nbytes, roundtrip


class Scalar(nn.Module):
    def __init__(self, value: float, size: int = 1):
        super().__init__()
        self.w = nn.Parameter(torch.full((size,), value))


class Tiny(nn.Module):
    """``blocks`` of scalars: block i starts at ``values[i]``."""

    def __init__(self, values=(1.0, 2.0), size: int = 1):
        super().__init__()
        self.blocks = nn.ModuleList(Scalar(v, size) for v in values)


class OtherWorker:
    """A fake second worker whose outer gradient is always ``other`` (per fragment size)."""

    world_size = 2

    def __init__(self, other: float):
        self.other = other

    def launch(self, flat, *, bits=None, fmt="int", name=""):
        total = roundtrip(flat, bits) + self.other
        return Pending(lambda: total, payload_nbytes(flat.numel(), bits))


def inner_step(model, opt):
    # every inner step adds exactly 1 to every parameter (SGD, lr 1, gradient -1)
    opt.zero_grad()
    for p in model.parameters():
        p.grad = -torch.ones_like(p)
    opt.step()


def values(model):
    return [round(float(b.w.detach()), 6) for b in model.blocks]


def test_lr_one_momentum_zero_is_parameter_averaging():
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    # The other worker ends the round at (4, 5), so its outer gradient is (1-4, 2-5) = (-3, -3).
    with StreamingDiLoCo(model, opt, OtherWorker(-3.0), sync_every=1, outer_lr=1.0, outer_momentum=0.0):
        inner_step(model, opt)  # we reach (2, 3); the round ends here
    assert values(model) == [3.0, 4.0]  # mean of (2, 3) and (4, 5)


def test_nesterov_outer_step_overshoots_the_average():
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with StreamingDiLoCo(model, opt, OtherWorker(-3.0), sync_every=1) as algo:
        inner_step(model, opt)
        # mean outer gradient D = ((1-2) + (-3)) / 2 = -2; momentum b = D; Nesterov u = D + 0.9 b = -3.8
        # global = 1 - 0.7 * (-3.8) = 3.66 (and 4.66): past the average 3.0 -> not plain averaging
        assert values(model) == [3.66, 4.66]
        inner_step(model, opt)  # local 4.66; D = ((3.66 - 4.66) + (-3)) / 2 = -2 again
        # b = 0.9 * (-2) + (-2) = -3.8; u = -2 + 0.9 * (-3.8) = -5.42; global = 3.66 + 0.7 * 5.42
        assert values(model) == [pytest.approx(7.454), pytest.approx(8.454)]
    assert algo.ledger.n_syncs == 2


def test_streaming_overlap_merges_with_alpha():
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    # The fake peer sends our own outer gradient back (other = same as ours): use a reducer that doubles.
    class Twin(OtherWorker):
        def launch(self, flat, *, bits=None, fmt="int", name=""):
            return Pending(lambda: 2 * flat, 4 * flat.numel())

    algo = StreamingDiLoCo(model, opt, Twin(0.0), sync_every=4, n_fragments=2, fragment_sync_delay=1,
                           fragment_update_alpha=0.5, outer_lr=1.0, outer_momentum=0.0)
    with algo:
        inner_step(model, opt)
        inner_step(model, opt)  # t = 2: fragment 0 (block 0) launches with local 3: delta = 1 - 3 = -2
        assert values(model) == [3.0, 4.0]
        inner_step(model, opt)  # t = 3: block 0 is 4 locally; global = 1 + 2 = 3; merge 0.5*4 + 0.5*3
        assert values(model) == [3.5, 5.0]
        inner_step(model, opt)  # t = 4: fragment 1 launches (local 6, delta = 2 - 6 = -4)
        inner_step(model, opt)  # t = 5: block 1 is 7 locally; global = 6; merge -> 6.5
        assert values(model) == [5.5, 6.5]
    assert [r.fragment for r in algo.ledger.records] == [0, 1]


def test_finish_applies_the_sync_still_in_flight():
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with StreamingDiLoCo(model, opt, LocalReducer(), sync_every=2, n_fragments=1, fragment_sync_delay=1,
                         outer_lr=1.0, outer_momentum=0.0) as algo:
        inner_step(model, opt)
        inner_step(model, opt)  # launched at t = 2, would apply at t = 3
    assert algo.outer_state_dict()["blocks.0.w"].item() == 3.0  # applied on exit


def test_peak_bytes_of_streaming_are_diloco_over_P_for_equal_fragments():
    peaks = {}
    for P in (1, 2, 4):
        model = Tiny(values=(0.0,) * 4, size=10)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        with StreamingDiLoCo(model, opt, LocalReducer(), sync_every=8, n_fragments=P) as algo:
            for _ in range(16):
                inner_step(model, opt)
        peaks[P] = algo.ledger.peak_bytes
        assert algo.ledger.total_bytes == 2 * 4 * 40  # two rounds of every fragment, fp32
    assert peaks == {1: 160, 2: 80, 4: 40}


def test_four_bit_payload_is_at_most_a_seventh_of_fp32():
    n = 50_000
    assert payload_nbytes(n, 4) <= payload_nbytes(n, None) / 7
    model = Tiny(values=(0.0, 0.0), size=640)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with StreamingDiLoCo(model, opt, LocalReducer(), sync_every=2, quantize_bits=4) as algo:
        inner_step(model, opt)
        inner_step(model, opt)
    assert algo.ledger.peak_bytes <= 4 * 1280 / 7


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sync_every=10, n_fragments=3), "divisible"),
        (dict(sync_every=8, n_fragments=2, fragment_sync_delay=4), "tau"),
        (dict(sync_every=8, fragment_update_alpha=1.5), "alpha"),
        (dict(sync_every=8, fragment_update_alpha=-0.1), "alpha"),
        (dict(sync_every=8, outer_lr=0.0), "outer_lr"),
    ],
)
def test_bad_configuration_raises(kwargs, match):
    model = Tiny()
    with pytest.raises(ValueError, match=match):
        StreamingDiLoCo(model, torch.optim.SGD(model.parameters(), lr=1.0), LocalReducer(), **kwargs)
