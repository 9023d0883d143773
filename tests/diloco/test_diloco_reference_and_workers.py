"""The single-process reference against hand-rolled averaging, and real workers against the reference."""

import copy

import pytest
import torch

from companion import lm
from companion.diloco import reference, runner
from companion.diloco.fragments import make_fragments
from companion.diloco.spec import RunSpec

SMALL = RunSpec(steps=8, H=4, batch_size=4, seq_len=16, d_model=16, n_heads=2, eval_seqs=16)


def _independent_replicas(spec: RunSpec, n_workers: int):
    """Each worker's parameters after H inner AdamW steps from the shared init, without any sync."""
    src, init = spec.source(), spec.initial_model()
    out = []
    for rank in range(n_workers):
        model = copy.deepcopy(init)
        opt = spec.inner_optimizer(model)
        batches = lm.token_batches(src, spec.batch_size, spec.seq_len, spec.seed, rank, n_workers)
        for _ in range(spec.H):
            opt.zero_grad()
            lm.lm_loss(model, next(batches)).backward()
            opt.step()
        out.append(dict(model.named_parameters()))
    return init, out


def test_reference_round_with_lr_one_and_no_momentum_is_plain_averaging():
    spec = SMALL.with_(steps=4, outer_lr=1.0, outer_momentum=0.0)
    _, replicas = _independent_replicas(spec, 2)
    ref = reference.simulate(spec, n_workers=2)
    for name, value in ref.outer_params.items():
        torch.testing.assert_close(value, (replicas[0][name] + replicas[1][name]).detach() / 2, atol=1e-6, rtol=0)


def test_reference_round_with_nesterov_is_not_averaging_but_its_closed_form():
    spec = SMALL.with_(steps=4)
    init, replicas = _independent_replicas(spec, 2)
    ref = reference.simulate(spec, n_workers=2)
    for name, p0 in init.named_parameters():
        avg = (replicas[0][name] + replicas[1][name]).detach() / 2
        delta = p0.detach() - avg
        # first outer step: momentum b = delta, Nesterov u = (1 + 0.9) delta
        torch.testing.assert_close(ref.outer_params[name], p0.detach() - 0.7 * 1.9 * delta, atol=1e-6, rtol=0)
    assert any(not torch.allclose(ref.outer_params[n], (replicas[0][n] + replicas[1][n]).detach() / 2)
               for n in ref.outer_params)


def test_real_workers_reproduce_the_reference():
    specs = [
        SMALL,  # DiLoCo
        SMALL.with_(n_fragments=2, tau=1, alpha=0.5, bits=4),  # Streaming, overlapped, 4-bit
        SMALL.with_(method="data_parallel", steps=3),
        SMALL.with_(n_fragments=2, tau=1, alpha=0.5, bits=4, quant_format="e3m0"),  # the paper's 4-bit
    ]
    results = runner.run_many(specs, world_size=2)
    for spec, res in zip(specs, results):
        ref = reference.simulate(spec, n_workers=2)
        torch.testing.assert_close(runner.outer_flat(res.outer_params), runner.outer_flat(ref.outer_params),
                                   atol=1e-4, rtol=0)
        assert res.eval_losses == pytest.approx(ref.eval_losses, abs=1e-4)
        for ledger in res.ledgers:  # both workers send the same payloads at the same steps
            assert ledger.per_sync() == ref.sync_bytes
    diloco, streaming, dp, e3m0 = results
    # the bytes counted from the tensors handed to the collectives, against the layout's formula:
    # fp32 4 bytes a value; 4-bit: half a byte a value, blocks padded to 64, 4 bytes a block
    frag_numel = [f.numel for f in make_fragments(SMALL.initial_model(), 2)]
    blocks = [-(-n // 64) for n in frag_numel]
    assert sorted(set(diloco.ledgers[0].per_sync().values())) == [4 * sum(frag_numel)]
    assert sorted(set(e3m0.ledgers[0].per_sync().values())) == sorted({32 * b + 4 * b for b in blocks})
    assert e3m0.ledgers[0].per_sync() == streaming.ledgers[0].per_sync()  # same layout as int4
    assert e3m0.final_loss != streaming.final_loss  # ... but different values on the wire
    # without a modelled link there is nothing to wait for; one entry per sync, none for data-parallel
    assert [len(w) for w in diloco.link_waits_s] == [diloco.ledgers[0].n_syncs] * 2
    assert all(x == 0.0 for w in diloco.link_waits_s for x in w) and dp.link_waits_s == [[], []]
    # strided fragments of the toy GPT are almost equal: peak bytes fall by about P, and 4-bit by ~7x more
    assert diloco.ledgers[0].peak_bytes / streaming.ledgers[0].peak_bytes > 2 * 7 * 0.9


def test_runner_rejects_bad_input():
    with pytest.raises(ValueError, match="world_size"):
        runner.run(SMALL, world_size=0)
    with pytest.raises(ValueError, match="RunSpec"):
        runner.run_many([])
    with pytest.raises(ValueError, match="tau"):
        SMALL.with_(n_fragments=2, tau=2)
    with pytest.raises(ValueError, match="alpha"):
        SMALL.with_(alpha=2.0)
    with pytest.raises(ValueError, match="quant_format"):
        SMALL.with_(bits=8, quant_format="e3m0")
    with pytest.raises(ValueError, match="quant_format"):
        SMALL.with_(bits=4, quant_format="e2m1")
    with pytest.raises(ValueError, match="divisible"):
        SMALL.with_(H=6, n_fragments=4)
    with pytest.raises(ValueError, match="method"):
        SMALL.with_(method="fedavg")


@pytest.mark.parametrize("scale", ["default", "paper"])
def test_experiment_specs_are_valid_at_both_scales(monkeypatch, scale):
    from companion.diloco import experiments

    monkeypatch.setenv("COMPANION_SCALE", scale)
    specs = experiments.dp_vs_diloco_specs() + experiments.streaming_specs()
    assert specs[0].method == "data_parallel"
    stream = experiments.streaming_specs()[-1]
    assert stream.bits == 4 and stream.tau == 1 and stream.alpha == 0.5
    assert stream.n_layers % stream.n_fragments == 0
    if scale == "paper":
        assert stream.n_layers // stream.n_fragments == 3 and stream.H == 100  # the paper's fragments and H
