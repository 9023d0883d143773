"""Quantised payloads: round-trip error bounds, packing, sizes, bad input."""

import pytest
import torch

from companion import comm


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_round_trip_error_is_at_most_half_a_step(bits, dtype):
    x = (torch.randn(37, 19, generator=torch.Generator().manual_seed(bits)) * 3).to(dtype)
    q = comm.quantize(x, bits=bits, block_size=32)
    back = comm.dequantize(q)
    assert back.shape == x.shape and back.dtype == torch.float32
    flat = x.float().reshape(-1)
    pad = torch.zeros(q.scales.numel() * 32)
    pad[: flat.numel()] = flat
    step = pad.view(-1, 32).abs().amax(1) / (2 ** (bits - 1) - 1)  # one quantisation step per block
    bound = (step / 2).repeat_interleave(32)[: flat.numel()].view(x.shape)
    assert ((back - x.float()).abs() <= bound + 1e-6).all()
    # the block maxima are exact
    idx = x.float().abs().argmax()
    assert back.reshape(-1)[idx] == pytest.approx(x.float().reshape(-1)[idx].item(), rel=1e-6)


def test_payload_sizes_and_packing():
    x = torch.randn(1000)
    q4, q8 = comm.quantize(x, bits=4, block_size=64), comm.quantize(x, bits=8, block_size=64)
    n_blocks = 16  # ceil(1000 / 64)
    assert q4.codes.dtype == torch.uint8 and q4.codes.numel() == n_blocks * 64 // 2
    assert q8.codes.numel() == n_blocks * 64
    assert q4.nbytes == n_blocks * 32 + 4 * n_blocks
    assert q8.nbytes == n_blocks * 64 + 4 * n_blocks
    assert q4.nbytes < x.numel() * 4 / 6  # over 6x smaller than fp32


def test_error_shrinks_with_more_bits():
    x = torch.randn(4096, generator=torch.Generator().manual_seed(0))
    err4 = (comm.dequantize(comm.quantize(x, bits=4)) - x).pow(2).mean()
    err8 = (comm.dequantize(comm.quantize(x, bits=8)) - x).pow(2).mean()
    assert err8 < err4 / 100


def test_zeros_round_trip_exactly():
    assert torch.equal(comm.dequantize(comm.quantize(torch.zeros(10), bits=4)), torch.zeros(10))


def test_bad_input():
    with pytest.raises(ValueError, match="float32"):
        comm.quantize(torch.arange(10), bits=4)
    with pytest.raises(ValueError, match="bits"):
        comm.quantize(torch.randn(10), bits=3)
    with pytest.raises(ValueError, match="block_size"):
        comm.quantize(torch.randn(10), block_size=7)
    with pytest.raises(ValueError, match="NaN"):
        comm.quantize(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="torch.Tensor"):
        comm.quantize([1.0, 2.0])
