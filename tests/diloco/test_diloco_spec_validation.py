"""RunSpec rejects, in the calling process, every value that would otherwise fail inside a worker."""

import dataclasses
import math

import pytest
import torch

from companion import comm
from companion.diloco import reference
from companion.diloco.fragments import layer_assignment
from companion.diloco.spec import RunSpec

SMALL = RunSpec(steps=8, H=4, batch_size=4, seq_len=16, d_model=16, n_heads=2, eval_seqs=16)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(bits=3), r"bits=3 is not a payload format: use None \(fp32\) or one of \(4, 8\)"),
        (dict(bits=16), r"bits=16 .* \(4, 8\)"),
        (dict(bits="4"), r"bits='4' is not a payload format"),
        (dict(bits=True), r"bits=True is not a payload format"),
        (dict(pattern="interleaved"), r"pattern='interleaved' .* \('strided', 'sequential'\)"),
        (dict(outer_lr=0.0), r"outer_lr=0.0 must be a finite number > 0 \(DiLoCo's is 0.7"),
        (dict(outer_lr=-0.7), r"outer_lr=-0.7 must be"),
        (dict(outer_lr=math.nan), r"outer_lr=nan must be"),
        (dict(outer_lr=math.inf), r"outer_lr=inf must be"),
        (dict(outer_momentum=1.0), r"outer_momentum=1.0 must be in \[0, 1\)"),
        (dict(outer_momentum=-0.1), r"outer_momentum=-0.1 must be in \[0, 1\)"),
        (dict(inner_lr=0.0), r"inner_lr=0.0 must be a finite number > 0"),
        (dict(weight_decay=-0.1), r"weight_decay=-0.1 must be a finite number >= 0"),
        (dict(batch_size=0), r"batch_size=0 must be an int >= 1"),
        (dict(seq_len=1), r"seq_len=1 must be an int >= 2"),
        (dict(eval_seqs=0), r"eval_seqs=0 must be an int >= 1"),
        (dict(vocab_size=1), r"vocab_size=1 must be an int >= 2"),
        (dict(order=0), r"order=0 must be an int >= 1"),
        (dict(vocab_size=4096, order=2), r"4096\*\*2 exceeds .* lower the order or the vocabulary"),
        (dict(seed=-1), r"seed=-1 must be an int >= 0"),
        (dict(source_seed=1.5), r"source_seed=1.5 must be an int >= 0"),
        (dict(d_model=18, n_heads=4), r"d_model=18 is not divisible by n_heads=4"),
        (dict(link_gbps=0.0, link_latency_s=0.01), r"link_gbps=0.0, link_latency_s=0.01: gbit_per_s must be"),
        (dict(link_gbps=1.0, link_latency_s=-0.01), r"link_latency_s=-0.01: latency_s must be a finite"),
        (dict(eval_every=-1), r"eval_every=-1 must be an int >= 0"),
        (dict(steps=0), r"steps must be an int >= 1, got 0"),
    ],
)
def test_bad_values_raise_naming_value_and_fix(changes, match):
    with pytest.raises(ValueError, match=match):
        SMALL.with_(**changes)


def test_bits_accepted_exactly_where_the_quantiser_accepts_them():
    # two independent gates: RunSpec's check and companion.comm.quantize's own
    for bits in range(0, 17):
        try:
            comm.quantize(torch.zeros(8), bits=bits, block_size=8)
            quantiser_ok = True
        except ValueError:
            quantiser_ok = False
        try:
            SMALL.with_(bits=bits)
            spec_ok = True
        except ValueError:
            spec_ok = False
        assert spec_ok == quantiser_ok, bits
    assert SMALL.with_(bits=None).bits is None  # fp32


@pytest.mark.parametrize("pattern", ["strided", "sequential", "Strided", "interleaved", ""])
def test_patterns_accepted_exactly_where_the_fragmenter_accepts_them(pattern):
    try:
        layer_assignment(4, 2, pattern)
        fragmenter_ok = True
    except ValueError:
        fragmenter_ok = False
    try:
        SMALL.with_(pattern=pattern)
        spec_ok = True
    except ValueError:
        spec_ok = False
    assert spec_ok == fragmenter_ok


def test_an_unchecked_bad_value_would_only_fail_mid_training():
    # Bypass the constructor's check: the same value then fails at the first sync, inside the
    # training loop (in a real run, inside a worker process), which is what the check prevents.
    spec = dataclasses.replace(SMALL)
    object.__setattr__(spec, "bits", 3)
    with pytest.raises(ValueError, match="bits must be one of"):
        reference.simulate(spec, n_workers=1)
