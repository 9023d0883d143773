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
