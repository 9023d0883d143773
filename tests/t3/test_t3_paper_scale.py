"""The paper-scale table's model sets, summaries, DRAM headroom and the contention diagnostic."""

import pytest

from companion.t3 import (
    PAPER,
    PAPER_MODEL_SETS,
    PAPER_MODELS,
    PAPER_TP_DEGREES,
    contention_for_gap,
    dram_headroom,
    geomean,
    paper_scale_table,
    speedup_summary,
    sublayers,
    traffic_categories,
)
from companion.t3.hardware import HARDWARE_SOURCES
from companion.t3.paper import OUR_CHOICE, PRIMARY, SECONDARY, Reported
from companion.t3.paper_scale import PAPER_REPORTED, paper_model


def test_model_sets_cover_the_models_and_degrees():
    names = [m.name for m in PAPER_MODELS]
    assert sorted(names) == sorted(n for s in PAPER_MODEL_SETS.values() for n in s) == sorted(PAPER_TP_DEGREES)
    assert all(PAPER_TP_DEGREES[n] == (8, 16) for n in PAPER_MODEL_SETS["main"])
    assert all(PAPER_TP_DEGREES[n] == (32,) for n in PAPER_MODEL_SETS["large"])
    for m in PAPER_MODELS:
        assert m.source and m.status == OUR_CHOICE
        assert m.d_model % m.heads == 0 and m.layers > 0
        for tp in PAPER_TP_DEGREES[m.name]:
            assert len(sublayers(m, tp, 16)) == 4


def test_added_shapes():
    mega, gpt3 = paper_model("Mega-GPT-2"), paper_model("GPT-3")
    assert (mega.d_model, mega.layers, mega.heads, mega.d_ff) == (3072, 72, 32, 4 * 3072)
    assert (gpt3.d_model, gpt3.layers, gpt3.heads, gpt3.d_ff) == (12288, 96, 96, 4 * 12288)
    with pytest.raises(KeyError):
        paper_model("GPT-4")


def test_default_table_runs_the_sets_in_order():
    rows = paper_scale_table()
    order = [r.sublayer.model for r in rows]
    assert order[0] == "Mega-GPT-2" and order[-1] == "MT-NLG"
    main = paper_scale_table(models=PAPER_MODEL_SETS["main"])
    assert {r.sublayer.model for r in main} == {"Mega-GPT-2", "T-NLG"} and len(main) == 16


def test_t3_equals_ideal_without_contention_and_dram_never_binds():
    rows = paper_scale_table()
    for r in rows:
        assert r.t3_s == pytest.approx(r.ideal_s, rel=1e-12)
        assert dram_headroom(r) > 1.0
    s = speedup_summary(rows)
    assert s["t3_geomean"] == pytest.approx(s["ideal_geomean"])
    assert s["software_geomean"] < s["t3_geomean"] <= s["t3_max"]


def test_contention_opens_the_gap_monotonically():
    main = PAPER_MODEL_SETS["main"]
    ideal = geomean(r.ideal_speedup for r in paper_scale_table(models=main))
    t3 = [geomean(r.t3_speedup for r in paper_scale_table(models=main, t3_contention=c)) for c in (0.0, 0.2, 0.5)]
    assert t3[0] == pytest.approx(ideal) and t3[0] > t3[1] > t3[2]


def test_contention_for_gap_hits_its_target():
    main = PAPER_MODEL_SETS["main"]
    assert contention_for_gap(1.0, main) == 0.0
    target = (1 + PAPER["t3_geomean"].value) / (1 + PAPER["ideal_geomean"].value)
    c = contention_for_gap(target, main)
    rows = paper_scale_table(models=main, t3_contention=c)
    got = geomean(r.t3_speedup for r in rows) / geomean(r.ideal_speedup for r in rows)
    assert got == pytest.approx(target, abs=1e-5) and 0 < c < 2
    # a smaller gap (T3-MCA's) needs less contention
    mca = (1 + PAPER["t3_mca_geomean"].value) / (1 + PAPER["ideal_geomean"].value)
    assert 0 < contention_for_gap(mca, main) < c
    with pytest.raises(ValueError):
        contention_for_gap(1.5, main)


def test_traffic_categories_both_baselines():
    rows = paper_scale_table(models=PAPER_MODEL_SETS["main"])
    kernel, fused = traffic_categories(rows, "kernel"), traffic_categories(rows, "fused")
    assert kernel["rs_read_ratio"] == pytest.approx(3.0)
    assert 2.0 < fused["rs_read_ratio"] < 2.15
    assert kernel["gemm_rs_write_change"] < fused["gemm_rs_write_change"] < 0
    assert 0.3 < kernel["saving"] < 0.36 and 0.12 < fused["saving"] < 0.18
    with pytest.raises(ValueError):
        traffic_categories(rows, "nccl")


def test_paper_numbers_carry_a_status():
    assert {v.status for v in PAPER.values()} == {PRIMARY, SECONDARY}
    abstract = {k for k, v in PAPER.items() if v.where == "abstract"}
    assert abstract == {k for k, v in PAPER.items() if v.status == PRIMARY}
    assert PAPER_REPORTED["t3_speedup_geomean"] == PAPER["t3_mca_geomean"].value == 0.30
    with pytest.raises(ValueError):
        Reported(1.0, "tertiary", "x", "y")
    assert {row[3] for row in HARDWARE_SOURCES} <= {SECONDARY, "derived", OUR_CHOICE}
    assert all(row[3] == SECONDARY for row in HARDWARE_SOURCES if "§5.1" in row[2])


def test_baseline_gemm_read_factor_raises_the_saving():
    rows = paper_scale_table(models=PAPER_MODEL_SETS["main"])
    plain = traffic_categories(rows, "fused")
    cached = traffic_categories(rows, "fused", baseline_gemm_read_factor=1.56)
    assert cached["gemm_read_ratio"] == pytest.approx(1.56)
    assert cached["saving"] > plain["saving"] and cached["saving_max"] >= cached["saving"]
    assert cached["rs_read_ratio"] == pytest.approx(plain["rs_read_ratio"])
    assert plain["saving_max"] == pytest.approx(max(r.traffic_reduction_fused for r in rows))
