import pytest
import torch

from companion import lm
from companion.diloco.fragments import assign_, flatten, layer_assignment, make_fragments
from companion.diloco.ledger import ByteLedger
from companion.diloco.schedule import FragmentSchedule


def test_schedule_is_diloco_with_one_fragment():
    s = FragmentSchedule(H=5)
    assert [t for t in range(1, 16) if s.launch_at(t) is not None] == [5, 10, 15]
    assert all(s.apply_at(t) == s.launch_at(t) for t in range(20))


def test_schedule_staggers_fragments_and_delays_by_tau():
    # MaxText's worked example: P = 4, H = 12, tau = 1
    s = FragmentSchedule(H=12, n_fragments=4, tau=1)
    launches = {t: s.launch_at(t) for t in range(1, 25) if s.launch_at(t) is not None}
    applies = {t: s.apply_at(t) for t in range(1, 26) if s.apply_at(t) is not None}
    assert launches == {3: 0, 6: 1, 9: 2, 12: 3, 15: 0, 18: 1, 21: 2, 24: 3}
    assert applies == {t + 1: p for t, p in launches.items()}
    # each fragment syncs every H steps
    for p in range(4):
        ts = [t for t, q in launches.items() if q == p]
        assert all(b - a == 12 for a, b in zip(ts, ts[1:]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(H=10, n_fragments=3), "divisible"),
        (dict(H=12, n_fragments=4, tau=3), "tau"),
        (dict(H=12, n_fragments=4, tau=-1), "tau"),
        (dict(H=0), "H"),
    ],
)
def test_bad_schedules_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FragmentSchedule(**kwargs)


def test_layer_patterns():
    assert layer_assignment(6, 3, "strided") == [(0, 3), (1, 4), (2, 5)]
    assert layer_assignment(6, 3, "sequential") == [(0, 1), (2, 3), (4, 5)]
    with pytest.raises(ValueError, match="divisible"):
        layer_assignment(6, 4)
    with pytest.raises(ValueError, match="pattern"):
        layer_assignment(6, 3, "random")


@pytest.mark.parametrize("pattern", ["strided", "sequential"])
@pytest.mark.parametrize("P", [1, 2, 4])
def test_fragments_partition_the_parameters_exactly(pattern, P):
    model = lm.GPT(lm.GPTConfig(vocab_size=16, seq_len=8, d_model=16, n_layers=4, n_heads=2))
    frags = make_fragments(model, P, pattern=pattern)
    ids = [id(p) for f in frags for p in f.params]
    assert len(ids) == len(set(ids))  # disjoint
    assert set(ids) == {id(p) for p in model.parameters()}  # covering
    assert sum(f.numel for f in frags) == model.n_params()
    # embeddings ride with block 0, final norm and head with the last block
    first = next(f for f in frags if 0 in f.layers)
    last = next(f for f in frags if 3 in f.layers)
    assert "tok_emb.weight" in first.names and "head.weight" in last.names


def test_flatten_is_a_private_copy_and_assign_inverts_it():
    model = lm.GPT(lm.GPTConfig(vocab_size=8, seq_len=4, d_model=8, n_layers=2, n_heads=2))
    params = list(model.parameters())
    flat = flatten(params)
    flat += 1.0  # must not touch the model
    assert not torch.equal(flatten(params), flat)
    assign_(params, flat)
    assert torch.equal(flatten(params), flat)
    with pytest.raises(ValueError, match="values"):
        assign_(params, flat[:-1])


def test_ledger_peak_and_total():
    ledger = ByteLedger()
    ledger.record(10, 0, 100)
    ledger.record(20, 1, 60)
    ledger.record(20, 0, 40)
    assert ledger.total_bytes == 200 and ledger.peak_bytes == 100 and ledger.n_syncs == 2
    with pytest.raises(ValueError):
        ledger.record(30, 0, -1)
