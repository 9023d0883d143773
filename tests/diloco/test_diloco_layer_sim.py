import pytest

from companion.diloco import paper
from companion.diloco.layer_sim import simulate_utilization, simulated_required_bandwidth_gbps
from companion.diloco.utilization import METHODS, utilization

SETUP = paper.TABLE4_1B_SETUP


@pytest.mark.parametrize("method", METHODS)
def test_per_layer_simulation_reproduces_every_column_including_99(method):
    for cu, gbps in zip(paper.TABLE4_UTILIZATIONS, paper.TABLE4_1B[method]):
        ours = simulated_required_bandwidth_gbps(method, target_utilization=cu, **SETUP)
        assert abs(paper.first_grid_index_at_least(ours) - paper.grid_index(gbps)) <= 1, (method, cu, ours)


def test_data_parallel_tail_is_one_layer_of_exposed_reduction():
    # at high bandwidth only layer 0's reduction is exposed: CU = T / (T + S / (L W))
    w = 1000.0
    layer_s = 16 * 1e9 / 24 / (w * 1e9)
    cu = simulate_utilization("data_parallel", w, **SETUP)
    assert cu == pytest.approx(0.1 / (0.1 + layer_s), rel=1e-9)
    # ... which the closed form, hiding everything behind 2/3 of a step, calls perfect
    assert utilization("data_parallel", w, **SETUP) == 1.0


def test_simulation_is_monotone_in_bandwidth():
    cus = [simulate_utilization("streaming_overlap", w, **SETUP) for w in (1, 3, 10, 30, 100)]
    assert all(b >= a for a, b in zip(cus, cus[1:]))
    assert 0 < cus[0] < cus[-1] <= 1


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="method"):
        simulate_utilization("gossip", 1.0, **SETUP)
    with pytest.raises(ValueError, match="target_utilization"):
        simulated_required_bandwidth_gbps("diloco", target_utilization=1.0, **SETUP)
    with pytest.raises(ValueError, match="tau"):
        simulate_utilization("streaming_overlap", 1.0, **{**SETUP, "tau": 12})


def test_layers_that_do_not_divide_into_fragments_raise_naming_both_numbers():
    # 24 // 5 = 4 fragments would silently hold 6 layers each, not 5
    with pytest.raises(ValueError, match=r"n_layers=24 is not divisible by layers_per_fragment=5.*divisors"):
        simulate_utilization("streaming", 1.0, **{**SETUP, "layers_per_fragment": 5})
    with pytest.raises(ValueError, match=r"n_layers=25 is not divisible by layers_per_fragment=3"):
        simulated_required_bandwidth_gbps("streaming_overlap", target_utilization=0.9, **{**SETUP, "n_layers": 25})
    # methods without fragments do not cut layers, so any layer count is fine for them
    assert 0 < simulate_utilization("data_parallel", 100.0, **{**SETUP, "n_layers": 25}) <= 1


def test_pattern_is_validated_before_anything_runs():
    for method in ("data_parallel", "streaming"):
        with pytest.raises(ValueError, match=r"pattern='interleaved'.*strided"):
            simulate_utilization(method, 1.0, **SETUP, pattern="interleaved")


def test_patterns_agree_where_only_layer_0_stalls_and_strided_wins_below():
    # At 1 Tbit/s every send is shorter than one layer's backward, so only layer 0 (in fragment
    # 0 under both patterns) stalls the next forward, by one layer's send time s, once per P K
    # steps: CU = P K T / (P K T + s), computed here by hand.
    w, T, P = 1000.0, SETUP["step_time_s"], SETUP["n_layers"] // SETUP["layers_per_fragment"]
    K = SETUP["H"] // P
    s = 16 * SETUP["n_params"] / SETUP["n_layers"] / (w * 1e9)
    by_hand = P * K * T / (P * K * T + s)
    for pattern in ("strided", "sequential"):
        cu = simulate_utilization("streaming", w, **SETUP, pattern=pattern)
        assert cu == pytest.approx(by_hand, rel=1e-12), pattern
    # Slower links: sequential fragment 0 sends layers 2, 1, 0 back to back at the end of the
    # backward, all needed first by the next forward; strided fragments hold one early layer each.
    for method in ("streaming", "streaming_overlap"):
        seq = simulated_required_bandwidth_gbps(method, target_utilization=0.99, **SETUP, pattern="sequential")
        strided = simulated_required_bandwidth_gbps(method, target_utilization=0.99, **SETUP, pattern="strided")
        assert seq > 1.1 * strided, (method, seq, strided)


def test_fewer_bisection_steps_stay_within_the_stated_factor():
    exact = simulated_required_bandwidth_gbps("streaming", target_utilization=0.95, **SETUP)
    quick = simulated_required_bandwidth_gbps("streaming", target_utilization=0.95, **SETUP, iterations=20)
    bound = (1e5 / 1e-3) ** (2.0**-20)  # the docstring's factor for the default bounds
    assert exact <= quick <= exact * bound
    with pytest.raises(ValueError, match="iterations"):
        simulated_required_bandwidth_gbps("streaming", target_utilization=0.95, **SETUP, iterations=0)


@pytest.mark.parametrize("method", ["data_parallel", "diloco", "streaming", "streaming_overlap_fp4"])
def test_merging_layers_changes_no_time(method):
    # the merged schedule and the one with an op per layer's forward and backward are built
    # differently; they must end at the same time and send the same messages
    from companion.diloco.layer_sim import play

    kw = dict(SETUP, H=24, layers_per_fragment=2)
    merged = play(method, 3.0, **kw)
    split = play(method, 3.0, **kw, per_layer=True)
    assert len(split.run.ops) > len(merged.run.ops)
    assert split.run.makespan_s == pytest.approx(merged.run.makespan_s, rel=1e-12)
    comm = [[(s.name, round(s.start_s, 9)) for s in r.run.spans() if s.kind == "comm"] for r in (merged, split)]
    assert comm[0] == comm[1]


def test_lanes_put_every_message_in_its_fragment():
    from companion.diloco.fragments import layer_assignment
    from companion.diloco.layer_sim import play

    lr = play("streaming_overlap", 3.0, **dict(SETUP, H=24, layers_per_fragment=2), per_layer=True)
    lanes = lr.lanes()
    groups = layer_assignment(SETUP["n_layers"], SETUP["n_layers"] // 2, "strided")
    assert list(lanes)[0] == "compute" and len(lanes) == 1 + len(groups)
    for p, group in enumerate(groups):
        assert {int(s.name.split()[-1]) for s in lanes[f"fragment {p}"]} == set(group)
