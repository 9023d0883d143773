"""The schedule model, greedy generation, training helpers and the paper's table."""

import pytest
import torch

from companion import lm
from companion.ladder import Decoder
from companion.ladder.cost_model import (
    latency_for_allreduce_time,
    makespan,
    parallel_schedule,
    parallel_speedup,
    predicted_step_times,
    schedule,
    uniform_parallel_time,
    uniform_speedup,
    uniform_times,
)
from companion.ladder.inference import greedy_generate
from companion.ladder import paper
from companion.ladder.paper import SPEEDUP_70B_TP8, paper_rows
from companion.ladder.training import compare_architectures, conversion_experiment, train


def test_two_modules_by_hand():
    # c = 1, a = 2. Standard: h0 [0,1], AR0 [1,3], h1 [3,4], AR1 [4,6] -> 6.
    # Ladder: h1 reads x_0, so it starts at 1 while AR0 runs [1,3]; AR1 waits for the link: [3,5] -> 5.
    assert makespan([1, 1], [2, 2], ladder=False) == 6
    assert makespan([1, 1], [2, 2], ladder=True) == 5
    ladder = {iv.name: (iv.start_s, iv.end_s) for iv in schedule([1, 1], [2, 2], ladder=True)}
    assert ladder["h1"] == (1, 2) and ladder["AR1"] == (3, 5)


@pytest.mark.parametrize("c,a", [(1.0, 0.0), (1.0, 0.5), (1.0, 1.0), (0.5, 3.0)])
@pytest.mark.parametrize("n", [1, 3, 50])
def test_closed_form_matches_schedule(c, a, n):
    t_std, t_ladder = uniform_times(c, a, n)
    assert makespan([c] * n, [a] * n, ladder=False) == pytest.approx(t_std)
    assert makespan([c] * n, [a] * n, ladder=True) == pytest.approx(t_ladder)


def test_speedup_is_bounded_by_two_and_peaks_at_a_equals_c():
    assert uniform_speedup(1.0, 1.0, 10_000) == pytest.approx(2.0, abs=1e-3)
    assert uniform_speedup(1.0, 1.0, 8) > max(uniform_speedup(1.0, 0.5, 8), uniform_speedup(1.0, 2.0, 8))
    assert uniform_speedup(1.0, 0.0, 8) == 1.0


def test_latency_inversion():
    alpha = latency_for_allreduce_time(1e-3, 4096, 4, 1e9)
    assert 2 * 3 * (alpha + 4096 / (4 * 1e9)) == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="raise the bandwidth"):
        latency_for_allreduce_time(1e-6, 1e9, 2, 1e9)
    with pytest.raises(ValueError, match="world_size"):
        latency_for_allreduce_time(1e-3, 10, 1, 1e9)


def test_schedule_rejects_bad_times():
    with pytest.raises(ValueError, match="one compute and one comm"):
        schedule([1.0], [1.0, 2.0], ladder=True)
    with pytest.raises(ValueError, match=">= 0"):
        schedule([1.0], [-1.0], ladder=True)
    with pytest.raises(ValueError, match="one ladder flag per module"):
        schedule([1.0, 1.0], [1.0, 1.0], ladder=[True])
    with pytest.raises(ValueError, match="undefined"):
        uniform_speedup(0.0, 0.0, 3)


CFG = lm.GPTConfig(vocab_size=8, seq_len=16, d_model=16, n_layers=2, n_heads=2, mlp_ratio=2)


def test_greedy_generate_matches_argmax_of_full_forward():
    torch.manual_seed(0)
    model = Decoder(CFG, ladder_layers=2).eval()
    prompt = torch.randint(0, 8, (3, 5), generator=torch.Generator().manual_seed(0))
    tokens, timing = greedy_generate(model, prompt, 4)
    assert tokens.shape == (3, 10)
    with torch.no_grad():  # re-derive each generated token from a forward over its prefix
        for t in range(5, 10):
            assert torch.equal(model(tokens[:, :t])[:, -1].argmax(-1), tokens[:, t])
    assert timing.decode_tokens_per_s == pytest.approx(3 * 4 / timing.decode_s)
    with pytest.raises(ValueError, match="exceed seq_len"):
        greedy_generate(model, prompt, 12)
    with pytest.raises(ValueError, match="n_new"):
        greedy_generate(model, prompt, 0)


def test_training_lowers_the_loss_and_conversion_keeps_the_standard_model():
    src = lm.MarkovSource(vocab_size=8, order=1, concentration=0.3, seed=0)
    runs = compare_architectures(CFG, src, steps=30, eval_every=15, eval_seqs=16, lr=1e-2,
                                 architectures=("standard", "ladder", "parallel"))
    for name, run in runs.items():
        assert run.eval_steps == [15, 30] and run.architecture == name
        assert run.final_eval_loss < run.train_loss[0]
    # one seed, one initialisation: the three forms start from the same weights
    inits = []
    for kwargs in ({}, {"ladder_layers": CFG.n_layers}, {"parallel": True}):
        torch.manual_seed(0)
        inits.append(Decoder(CFG, **kwargs).state_dict())
    assert all(torch.equal(inits[0][k], init[k]) for init in inits[1:] for k in inits[0])
    assert runs["parallel"].model.parallel and runs["ladder"].model.ladder_layers == CFG.n_layers
    with pytest.raises(ValueError, match="architectures must be names"):
        compare_architectures(CFG, src, steps=1, architectures=("dense",))
    torch.manual_seed(0)
    standard = Decoder(CFG)
    train(standard, src, steps=20, eval_every=20, eval_seqs=16)
    before = {k: v.clone() for k, v in standard.state_dict().items()}
    res = conversion_experiment(standard, src, retrain_steps=10, eval_every=5, eval_seqs=16)
    assert all(torch.equal(before[k], v) for k, v in standard.state_dict().items())
    assert res.retrain_run.eval_steps == [0, 5, 10] and res.retrain_run.eval_loss[0] == res.zero_shot
    with pytest.raises(ValueError, match="full standard model"):
        conversion_experiment(standard.with_ladder_layers(1), src, retrain_steps=1)
    with pytest.raises(ValueError, match="steps"):
        train(standard, src, steps=0)


def test_paper_table():
    assert SPEEDUP_70B_TP8[1][0] == 1.308 and len(paper_rows()) == 4
    for row in paper_rows():
        assert 1.0 < row["ladder_nvlink"] < row["bound_nvlink"]


def test_parallel_schedule_by_hand_and_closed_form():
    # two layers of c = 1 per module (2 per layer) and a = 3: L0 [0,2], AR0 [2,5], L1 [5,7], AR1 [7,10]
    spans = {iv.name: (iv.start_s, iv.end_s) for iv in parallel_schedule([2, 2], [3, 3])}
    assert spans == {"L0": (0, 2), "AR0": (2, 5), "L1": (5, 7), "AR1": (7, 10)}
    for c, a, n in [(1.0, 0.0, 2), (1.0, 0.5, 8), (0.5, 3.0, 50)]:
        played = max(iv.end_s for iv in parallel_schedule([2 * c] * (n // 2), [a] * (n // 2)))
        assert played == pytest.approx(uniform_parallel_time(c, a, n))
        # against the standard schedule played out module by module
        assert parallel_speedup(c, a, n) == pytest.approx(makespan([c] * n, [a] * n, ladder=False) / played)


def test_parallel_beats_ladder_only_on_a_slow_link():
    # (c + a) / (c + a/2) against the Ladder's: equal at a = 2c in the limit; parallel ahead beyond
    assert parallel_speedup(1.0, 1.0, 10_000) == pytest.approx(4 / 3)
    assert parallel_speedup(1.0, 2.0, 10_000) == pytest.approx(uniform_speedup(1.0, 2.0, 10_000), rel=1e-3)
    assert parallel_speedup(1.0, 3.0, 8) > uniform_speedup(1.0, 3.0, 8)
    assert parallel_speedup(1.0, 0.5, 8) < uniform_speedup(1.0, 0.5, 8)
    with pytest.raises(ValueError, match="n must be even"):
        uniform_parallel_time(1.0, 1.0, 3)
    with pytest.raises(ValueError, match="undefined"):
        parallel_speedup(0.0, 0.0, 2)
    # the parallel block's speed-up sits between standard and the Ladder's at batch 1, NVLink on
    assert 1.0 < paper.PARALLEL_SPEEDUP_70B_TP8[1][0] < SPEEDUP_70B_TP8[1][0]
    ratio = paper.TOKENS_PER_S_70B_BS1["parallel"] / paper.TOKENS_PER_S_70B_BS1["standard"]
    assert ratio == pytest.approx(paper.PARALLEL_SPEEDUP_70B_TP8[1][0], abs=5e-4)
    constants = [n for n in dir(paper) if n.isupper() and n != "STATUS"]
    assert sorted(paper.STATUS) == sorted(constants)
    assert paper.status_of("PRETRAINING").startswith("secondary")
    with pytest.raises(ValueError, match="no status recorded"):
        paper.status_of("TABLE9")


def test_predicted_step_times_add_the_unhidden_all_reduces():
    # 8 modules, a measured 8 ms step without communication (c = 1 ms), a = 2 ms
    t = predicted_step_times(8e-3, 2e-3, 8)
    assert t["standard"] == pytest.approx(8e-3 + 8 * 2e-3)
    assert t["parallel"] == pytest.approx(8e-3 + 4 * 2e-3)
    assert t["ladder"] == pytest.approx(1e-3 + 2e-3 + 7 * 2e-3)
    assert t["no-comm"] == 8e-3
    with pytest.raises(ValueError, match="no_comm_step_s > 0"):
        predicted_step_times(0.0, 1e-3, 8)
