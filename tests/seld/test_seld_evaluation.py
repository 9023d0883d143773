"""The stored evaluation's pieces: its conditions, the off-grid directions, pooling and intervals."""

from dataclasses import replace

import numpy as np
import pytest

from companion.seld import evaluation
from companion.seld.data import scenes_to_data
from companion.seld.foa import AZIMUTHS_DEG, ELEVATIONS_DEG
from companion.seld.metrics import doa_scores
from companion.seld.baseline import frame_directions
from companion.seld.scenes import SceneConfig, make_scenes
from companion.seld.train import evaluate_model

SMALL = SceneConfig(clip_seconds=1.0)


def test_condition_names_give_their_configs():
    assert evaluation.condition_config("ov2-reverberant").reverberant
    off = evaluation.condition_config("ov3-anechoic-offgrid")
    assert off.overlap == 3 and off.grid_offset_deg == 5.0 and not off.reverberant
    assert evaluation.condition_config("ov1-anechoic-snr10").snr_db == 10.0
    assert set(evaluation.CONDITIONS) >= set(evaluation.TABLE_CONDITIONS)
    for bad in ("ov1-anechoic-snr", "ov1-anechoic-louder", "ov4-anechoic"):
        with pytest.raises(ValueError, match="ov"):
            evaluation.condition_config(bad)


def test_off_grid_scenes_never_use_a_training_direction():
    scenes = make_scenes(6, replace(SMALL, overlap=3, grid_offset_deg=5.0), 3)
    dirs = {(e.azimuth, e.elevation) for s in scenes for e in s.events}
    grid = {(float(a), float(e)) for a in AZIMUTHS_DEG for e in ELEVATIONS_DEG}
    assert dirs and not dirs & grid
    assert all(a % 10 == 5 and e % 10 == 5 and ELEVATIONS_DEG[0] <= e <= ELEVATIONS_DEG[-1] for a, e in dirs)
    # the default grid is the paper's, and draws exactly what it drew before the offset existed
    az, el = SMALL.directions
    assert np.array_equal(az, AZIMUTHS_DEG) and np.array_equal(el, ELEVATIONS_DEG)


@pytest.mark.parametrize("offset", [-1.0, 10.0, float("nan"), True, "5"])
def test_bad_grid_offsets_are_refused(offset):
    with pytest.raises(ValueError, match="grid_offset_deg"):
        SceneConfig(grid_offset_deg=offset)


def test_interval_is_the_batch_means_t_interval():
    blocks = [0.1, 0.3, 0.2, 0.4, 0.0, 0.2, 0.3, 0.1, 0.2, 0.2]
    iv = evaluation.interval(0.2, blocks, 10)
    sd = np.std(blocks, ddof=1)
    # t quantile of 9 degrees of freedom at 97.5 %: 2.262 (tables)
    assert iv["hi"] - 0.2 == pytest.approx(2.262 * sd / np.sqrt(10), rel=1e-3)
    assert iv["lo"] == pytest.approx(0.4 - iv["hi"])
    with pytest.raises(ValueError, match="two blocks"):
        evaluation.interval(0.2, [0.2], 10)


def test_agreement_is_within_noise_and_can_fail():
    stored = evaluation.interval(0.5, [0.4, 0.6] * 5, 10)  # block sd 0.105
    se = stored["block_sd"] * np.sqrt(10 / 20 + 10 / 100)
    assert evaluation.agrees(0.5 + 2.9 * se, stored, 20)
    assert not evaluation.agrees(0.5 + 3.1 * se, stored, 20)
    with pytest.raises(ValueError, match="live_scenes"):
        evaluation.agrees(0.5, stored, 0)
    perfect = evaluation.interval(0.0, [0.0] * 10, 10)  # blocks that never vary: only equality agrees
    assert evaluation.agrees(0.0, perfect, 20) and not evaluation.agrees(0.01, perfect, 20)
    # one error in 60 live segments against none stored: within four counts' resolution, not within three hundredths
    assert evaluation.agrees(1 / 60, perfect, 20, z=4.0, resolution=1 / 60)
    assert not evaluation.agrees(0.3, perfect, 20, z=4.0, resolution=1 / 60)
    with pytest.raises(ValueError, match="resolution"):
        evaluation.agrees(0.0, perfect, 20, resolution=float("nan"))


def test_seed_spread_is_the_spread_of_the_runs_pooled_values():
    row = {name: {"f1": evaluation.interval(v, [v - 0.01, v + 0.01], 5)}
           for name, v in (("mixed", 0.80), ("mixed_seed1", 0.86), ("mixed_seed2", 0.83))}
    spread = evaluation.seed_spread(row, "f1")
    assert spread["values"] == [0.80, 0.86, 0.83]
    assert spread["mean"] == pytest.approx(0.83) and spread["sd"] == pytest.approx(0.03)
    assert (spread["min"], spread["max"]) == (0.80, 0.86)
    with pytest.raises(ValueError, match="doa_error"):
        evaluation.seed_spread(row, "doa_error")
    with pytest.raises(ValueError, match="mixed_seed2"):
        evaluation.seed_spread({k: row[k] for k in ("mixed", "mixed_seed1")}, "f1")


def test_target_verdict_reads_both_targets():
    f, d = evaluation.TARGET_F1, evaluation.TARGET_DOA_DEG
    assert evaluation.target_verdict(f, d) == "meets both"  # the bounds are inclusive
    assert evaluation.target_verdict(f - 0.01, d).startswith("meets the DOA")
    assert evaluation.target_verdict(f, d + 0.1).startswith("meets the F-score")
    assert evaluation.target_verdict(0.0, 90.0) == "misses both"
    with pytest.raises(ValueError, match="nan"):
        evaluation.target_verdict(float("nan"), d)


@pytest.fixture(scope="module")
def tiny():
    from companion.seld.experiments import SMALL as NET
    from companion.seld.features import FeatureScaler
    from companion.seld.model import SELDnet

    scenes = make_scenes(4, replace(SMALL, overlap=2), 11)
    data = scenes_to_data(scenes)
    scaler = FeatureScaler().fit(data.feats)
    model = SELDnet(NET).eval()
    return scenes, {"mixed": (model, scaler, {"phase": "absolute"})}


def test_pooled_scores_equal_the_direct_evaluation(tiny):
    scenes, networks = tiny
    outputs = evaluation.estimates(scenes, networks)
    row = evaluation.score(outputs, scenes, networks)
    model, scaler, _ = networks["mixed"]
    data = scenes_to_data(scenes)
    direct = evaluate_model(model, replace(data, feats=scaler.transform(data.feats)))
    for k in evaluation.NETWORK_METRICS:
        assert row["mixed"][k] == pytest.approx(direct[k], abs=1e-12), k
    # the oracle baseline, scored scene by scene and concatenated by hand
    found = [frame_directions(s.audio, s.sed.sum(axis=1)) for s in scenes]
    width = max(a.shape[1] for a, _ in found)
    active = np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a, _ in found])
    dirs = np.concatenate([np.pad(d, ((0, 0), (0, width - d.shape[1]), (0, 0))) for _, d in found])
    ref_sed, ref_doa = np.concatenate([s.sed for s in scenes]), np.concatenate([s.doa for s in scenes])
    assert row["intensity"]["doa_error"] == pytest.approx(doa_scores(active, dirs, ref_sed, ref_doa)["doa_error"])
    assert row["intensity"]["frame_recall"] == 1.0  # told the true count


def test_borrowed_counts_are_the_networks_own(tiny):
    scenes, networks = tiny
    outputs = evaluation.estimates(scenes, networks)
    for (prob, _), (active, _), (music, _) in zip(outputs["mixed"], outputs["intensity@mixed"],
                                                 outputs["music@mixed"]):
        asked = (prob > 0.5).sum(axis=1)
        found = active.sum(axis=1)
        # the greedy clustering stops when no bins are left: never more than asked, and one
        # direction whenever one is asked
        assert np.all(found <= asked) and np.all(found[asked == 1] == 1)
        assert np.array_equal(music.sum(axis=1), np.minimum(asked, 3))  # MUSIC: cut at three


def test_self_counting_baselines_report_the_mdl_counts(tiny):
    from companion.seld.music import mdl_counts

    scenes, networks = tiny
    outputs = evaluation.estimates(scenes, networks, self_count=True)
    row = evaluation.score(outputs, scenes, networks)
    own = [mdl_counts(s.audio) for s in scenes]
    for (music, _), n in zip(outputs["music@mdl"], own):
        assert np.array_equal(music.sum(axis=1), n)
    # frame recall scored through doa_scores against a direct count of frames whose estimate is right
    truth = np.concatenate([s.sed.sum(axis=1) for s in scenes])
    assert row["music@mdl"]["frame_recall"] == pytest.approx(np.mean(np.concatenate(own) == truth), abs=1e-12)
    assert "music@mdl" not in evaluation.estimates(scenes, networks)  # only when asked


def test_blocks_must_divide_the_scenes(tiny):
    _, networks = tiny
    with pytest.raises(ValueError, match="blocks"):
        evaluation.evaluate_condition("ov1-anechoic", networks, 10, 3, 0)


@pytest.mark.parametrize("epochs", [0, -1, 3.0, False])
def test_training_refuses_a_bad_epoch_limit_before_it_starts(tmp_path, epochs):
    from companion.seld.experiments import train_reference

    with pytest.raises(ValueError, match="epochs"):
        train_reference(["ov1-anechoic"], tmp_path / "m", masked=False, phase="absolute", seed=0, threads=1,
                        epochs=epochs)
    assert not list(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.parametrize("patience", [0, -3, 2.5, True])
def test_training_refuses_a_bad_patience_before_it_starts(tmp_path, patience):
    from companion.seld.experiments import train_reference

    with pytest.raises(ValueError, match="patience"):
        train_reference(["ov1-anechoic"], tmp_path / "m", masked=False, phase="absolute", seed=0, threads=1,
                        patience=patience)
    assert not list(tmp_path.iterdir())  # nothing written
