"""Real processes over gloo (companion.comm.launch): TP equivalence and the speed harness."""

import pytest
import torch

from companion import comm, lm
from companion.ladder import Decoder
from companion.ladder.speed import FREE_NETWORK, LinkPerCompute, measure_speed
from companion.ladder.workers import tp_logits_worker

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


def test_measure_speed_reports_every_case_and_calibrates_links():
    settings = {"free": FREE_NETWORK, "bare": None, "a=c": LinkPerCompute(1.0)}
    res = measure_speed(CFG, settings, batch_sizes={"free": (1,), "bare": (1,), "a=c": (1, 2)},
                        prompt_len=4, n_new=3, repeats=1, gantt_setting="a=c", timeout_s=90)
    assert len(res.rows) == 4 * 3  # 4 cases x 3 variants
    assert res.module_compute_s > 0
    link = res.links["a=c"]
    assert isinstance(link, comm.Link) and link.latency_s > 0
    # the calibrated all-reduce of one decode step lasts one module's compute
    assert abs(link.allreduce_time(CFG.d_model * 4, 2) - res.module_compute_s) < 1e-9
    assert res.get("a=c", "ladder", 2).decode_tokens_per_s > 0
    assert set(res.spans) == {"standard", "ladder", "no-comm"}
    comm_spans = [s for s in res.spans["standard"] if s.kind == "comm"]
    assert len(comm_spans) == 2 * 2 * CFG.n_layers  # one all-reduce per module, on each of 2 ranks
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
