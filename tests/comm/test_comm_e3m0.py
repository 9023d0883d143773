"""E3M0 codes: every code round-trips, nearest-value rounding, zeros and signs, sizes, bad input."""

import math

import pytest
import torch

from companion import comm
from companion.comm import e3m0

# The representable magnitudes of a unit scale, written out (not taken from the module).
MAGNITUDES = [0.0] + [2.0**k for k in range(-6, 1)]


def test_the_sixteen_codes_are_sign_and_powers_of_two():
    values = e3m0.code_values().tolist()
    assert values[:8] == MAGNITUDES and values[8:] == [-v for v in MAGNITUDES]


def test_every_code_round_trips():
    codes = torch.arange(16, dtype=torch.uint8)
    packed = codes[0::2] | (codes[1::2] << 4)
    # one block of 16 holding all codes: its largest magnitude is 1, so the scale is 1
    x = e3m0.decode(packed, torch.ones(1), (16,), block_size=16)
    again, scales = e3m0.encode(x, block_size=16)
    assert scales.tolist() == [1.0]
    assert e3m0.unpack(again).tolist() == list(range(16))
    assert torch.signbit(x[8]) and x[8] == 0  # code 8 is -0


def _nearest_bruteforce(x: torch.Tensor, scale: float) -> torch.Tensor:
    grid = torch.tensor(MAGNITUDES + [-m for m in MAGNITUDES[1:]], dtype=torch.float64) * scale
    return grid[(x.double()[:, None] - grid[None, :]).abs().argmin(dim=1)]


def test_values_map_to_the_nearest_representable_value():
    g = torch.Generator().manual_seed(0)
    n = 20_000
    mags = torch.exp2(torch.empty(n).uniform_(-10, 0, generator=g))  # ten octaves under the max
    x = mags * torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    x[0] = 1.0  # the block's (one block) largest magnitude: scale 1
    back = comm.dequantize(comm.quantize(x, bits=4, block_size=n, fmt="e3m0"))
    nearest = _nearest_bruteforce(x, 1.0)
    # the same value, or (at a tie up to rounding) one exactly as close
    err, best = (back.double() - x.double()).abs(), (nearest - x.double()).abs()
    assert torch.all(err <= best + 1e-12)
    assert (back.double() == nearest).float().mean() > 0.999


@pytest.mark.parametrize("k", [-6, -3, -1])
def test_boundaries_are_at_one_and_a_half_not_sqrt_two(k):
    lo = 2.0**k
    x = torch.tensor([1.0, 1.5 * lo, 1.49 * lo, math.sqrt(2) * lo * 1.001, 2.0**-7, 0.99 * 2.0**-7])
    back = e3m0.decode(*e3m0.encode(x, block_size=6), (6,), block_size=6).tolist()
    # the tie goes up; just under it and at sqrt(2) (where log2 rounding would go up) go down;
    # half the smallest magnitude goes to it, just under half goes to zero
    assert back == [1.0, 2 * lo, lo, lo, 2.0**-6, 0.0]


def test_scale_is_the_block_maximum_and_maps_to_the_top_code():
    x = torch.tensor([0.3, -7.0, 0.0, 2.0, 1e-3, 5.0, -5.0, 0.1])
    codes, scales = e3m0.encode(x, block_size=4)
    assert scales.tolist() == [7.0, 5.0]
    assert e3m0.unpack(codes).tolist()[1] == 15  # -max: sign bit and the largest exponent
    back = e3m0.decode(codes, scales, x.shape, block_size=4)
    assert back[1] == -7.0 and back[5] == 5.0 and back[6] == -5.0


def test_zeros_and_signs():
    zeros = torch.zeros(10)
    codes, scales = e3m0.encode(zeros, block_size=10)
    assert e3m0.unpack(codes).tolist() == [0] * 10 and scales.tolist() == [0.0]
    assert torch.equal(comm.dequantize(comm.quantize(zeros, fmt="e3m0", block_size=10)), zeros)
    x = torch.randn(64, generator=torch.Generator().manual_seed(1))
    pos, neg = e3m0.unpack(e3m0.encode(x, 64)[0]), e3m0.unpack(e3m0.encode(-x, 64)[0])
    assert torch.equal(pos ^ neg, torch.full_like(pos, 8))  # only the sign bit differs
    back = comm.dequantize(comm.quantize(x, fmt="e3m0"))
    assert torch.equal(torch.signbit(back[back != 0]), torch.signbit(x[back != 0]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_inputs(dtype):
    x = torch.randn(100, generator=torch.Generator().manual_seed(2)).to(dtype)
    back = comm.dequantize(comm.quantize(x, fmt="e3m0"))
    assert back.dtype == torch.float32
    assert torch.equal(back, comm.dequantize(comm.quantize(x.float(), fmt="e3m0")))


def test_bytes_of_the_tensors_match_the_layout():
    x = torch.randn(1000)
    q = comm.quantize(x, bits=4, block_size=64, fmt="e3m0")
    blocks = -(-1000 // 64)
    assert q.codes.nbytes + q.scales.nbytes == blocks * 64 // 2 + 4 * blocks == q.nbytes
    assert q.nbytes == comm.quantize(x, bits=4, block_size=64).nbytes  # same bytes as int4


def test_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        e3m0.encode(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="NaN"):
        comm.quantize(torch.tensor([float("inf")]), fmt="e3m0")
    with pytest.raises(ValueError, match="float32"):
        e3m0.encode(torch.arange(4))
    with pytest.raises(ValueError, match="torch.Tensor"):
        e3m0.encode([1.0, 2.0])
    with pytest.raises(ValueError, match="block_size"):
        e3m0.encode(torch.randn(4), block_size=3)
    with pytest.raises(ValueError, match="4-bit"):
        comm.quantize(torch.randn(4), bits=8, fmt="e3m0")
    with pytest.raises(ValueError, match="fmt"):
        comm.quantize(torch.randn(4), fmt="e2m1")
    with pytest.raises(ValueError, match="uint8"):
        e3m0.decode(torch.zeros(2, dtype=torch.int32), torch.ones(1), (4,), block_size=4)
