"""Real processes over gloo (companion.comm.launch): TP equivalence and the speed harness."""

import pytest
import torch

from companion import comm, lm
from companion.ladder import Decoder, all_reduces_per_forward
from companion.ladder.speed import FREE_NETWORK, VARIANTS, LinkPerCompute, measure_speed
from companion.ladder.workers import PARALLEL, tp_logits_worker, tp_traffic_worker

CFG = lm.GPTConfig(vocab_size=16, seq_len=24, d_model=32, n_layers=2, n_heads=4, mlp_ratio=2)


def _state():
    torch.manual_seed(3)
    model = Decoder(CFG)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return model.state_dict()


@pytest.mark.parametrize("tp_size", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_same_weights_same_logits_on_one_process_and_at_tp(tp_size):
    state = _state()
    tokens = torch.randint(0, CFG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    forms = [0, CFG.n_layers]
    results = comm.launch(tp_logits_worker, tp_size, CFG, forms, tokens, 0, state, timeout_s=90)
    for k in forms:
        reference = Decoder(CFG, ladder_layers=k)
        reference.load_state_dict(state)
        with torch.no_grad():
            expected = reference.eval()(tokens)
        for rank_logits in results:
            torch.testing.assert_close(rank_logits[k], expected, rtol=1e-4, atol=1e-5)
    # and the Ladder model is a different function of the same weights
    assert (results[0][0] - results[0][CFG.n_layers]).abs().max() > 1e-2


def test_parallel_blocks_at_tp2_on_processes_match_one_process_and_send_half():
    state = _state()
    tokens = torch.randint(0, CFG.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    forms = [0, CFG.n_layers, PARALLEL]
    results = comm.launch(tp_traffic_worker, 2, CFG, forms, tokens, 0, state, timeout_s=90)
    reference = Decoder(CFG, parallel=True)
    reference.load_state_dict(state)
    with torch.no_grad():
        expected = reference.eval()(tokens)
    payload = tokens.numel() * CFG.d_model * 4  # one all-reduce's fp32 activations (B, T, C)
    for rank in results:
        torch.testing.assert_close(rank[PARALLEL]["logits"], expected, rtol=1e-4, atol=1e-5)
        # what each form really issued, against the formula: L for parallel, 2L for the others
        for form in forms:
            n = all_reduces_per_forward(CFG.n_layers, parallel=form == PARALLEL)
            assert rank[form]["all_reduces"] == n, (form, rank[form]["all_reduces"])
            assert rank[form]["payload_bytes"] == n * payload
            assert rank[form]["bytes_sent"] == n * payload  # a ring over p = 2 sends 2 (p - 1) / p = 1 x
        assert rank[PARALLEL]["all_reduces"] == CFG.n_layers == rank[0]["all_reduces"] // 2
    # the parallel model is a function of its own, not the standard one
    assert (results[0][PARALLEL]["logits"] - results[0][0]["logits"]).abs().max() > 1e-2


def test_measure_speed_reports_every_case_and_calibrates_links():
    settings = {"free": FREE_NETWORK, "bare": None, "a=c": LinkPerCompute(1.0)}
    res = measure_speed(CFG, settings, batch_sizes={"free": (1,), "bare": (1,), "a=c": (1, 2)},
                        prompt_len=4, n_new=3, repeats=1, gantt_setting="a=c", timeout_s=90)
    assert len(res.rows) == 4 * len(VARIANTS)  # 4 cases x every variant
    assert res.module_compute_s > 0
    link = res.links["a=c"]
    assert isinstance(link, comm.Link) and link.latency_s > 0
    # the calibrated all-reduce of one decode step lasts one module's compute
    assert abs(link.allreduce_time(CFG.d_model * 4, 2) - res.module_compute_s) < 1e-9
    assert res.get("a=c", "ladder", 2).decode_tokens_per_s > 0
    assert set(res.spans) == set(VARIANTS)
    comm_spans = [s for s in res.spans["standard"] if s.kind == "comm"]
    assert len(comm_spans) == 2 * 2 * CFG.n_layers  # one all-reduce per module, on each of 2 ranks
    parallel_spans = [s for s in res.spans["parallel"] if s.kind == "comm"]
    assert len(parallel_spans) == 2 * CFG.n_layers  # one per layer, on each of 2 ranks
    assert not [s for s in res.spans["no-comm"] if s.kind == "comm"]
    with pytest.raises(KeyError):
        res.get("a=c", "ladder", 64)


def test_measure_speed_rejects_bad_arguments():
    with pytest.raises(ValueError, match="settings is empty"):
        measure_speed(CFG, {})
    with pytest.raises(ValueError, match="gantt_setting"):
        measure_speed(CFG, {"free": FREE_NETWORK}, gantt_setting="slow")
    with pytest.raises(ValueError, match="not in settings"):
        measure_speed(CFG, {"free": FREE_NETWORK}, batch_sizes={"slow": (1,)})
    with pytest.raises(ValueError, match="ratio"):
        LinkPerCompute(0.0)
    with pytest.raises(ValueError, match="including 'standard'"):
        measure_speed(CFG, {"free": FREE_NETWORK}, variants=("ladder", "no-comm"))
