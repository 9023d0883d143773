"""Features, SELDnet, the two losses, training and checkpoints."""

import numpy as np
import pytest
import torch

from companion.seld.data import make_data
from companion.seld.features import FeatureScaler, stft_features
from companion.seld.losses import seld_loss
from companion.seld.model import BiGRUMul, SELDnet, SELDnetConfig
from companion.seld.scenes import SceneConfig
from companion.seld.train import evaluate_model, fit, load_checkpoint, predict, save_checkpoint



@pytest.fixture(autouse=True)
def one_thread():
    # On a loaded shared CPU, torch's OpenMP threads spin against each other and a tiny GRU
    # runs ten times slower; one thread is faster. The previous setting is restored.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = SELDnetConfig(n_classes=10, n_freq=128, conv_filters=8, freq_pools=(8, 8, 2), rnn_hidden=16, fc_hidden=16)


def test_feature_layout_is_magnitudes_then_phases_per_channel():
    rng = np.random.default_rng(0)
    audio = rng.standard_normal((4, 1280))
    audio[2] *= 5.0  # channel Z louder
    feats = stft_features(audio, n_fft=256, hop=128)
    assert feats.shape == (8, 10, 128)
    mags, phases = feats[:4], feats[4:]
    assert int(mags.mean(dim=(1, 2)).argmax()) == 2  # map c is |X_c|
    assert phases.abs().max() <= np.pi + 1e-6 and mags.min() >= 0


def test_feature_frames_line_up_with_label_frames():
    audio = np.zeros((4, 1280))
    audio[:, 128 * 6 + 64] = 1.0  # an impulse at the centre of label frame 6
    energy = stft_features(audio, n_fft=256, hop=128)[0].sum(dim=1)
    assert int(energy.argmax()) == 6


def test_features_refuse_wrong_channel_count():
    with pytest.raises(ValueError, match="expected 4 channels"):
        stft_features(np.zeros((2, 1280)))


def test_scaler_standardises_per_map_and_bin():
    x = torch.randn(5, 8, 20, 16) * 3 + 7
    scaler = FeatureScaler().fit(x)
    z = scaler.transform(x)
    assert torch.allclose(z.mean(dim=(0, 2)), torch.zeros(8, 16), atol=1e-5)
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureScaler().transform(x)
    with pytest.raises(ValueError, match="do not match"):
        scaler.transform(torch.randn(1, 8, 20, 32))


def test_seldnet_shapes_and_frame_rate():
    model = SELDnet(TINY)
    sed, doa = model(torch.randn(2, 8, 30, 128))
    assert sed.shape == (2, 30, 10) and doa.shape == (2, 30, 10, 3)
    assert doa.abs().max() <= 1.0  # tanh
    with pytest.raises(ValueError, match="not divisible"):
        SELDnetConfig(n_freq=100)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(2, 8, 30, 64))


def test_paper_sizes_give_about_half_a_million_parameters():
    # 64 filters, 2 x 128 GRU, 128 FC on 256 bins and 11 classes: the paper's network
    n = SELDnet(SELDnetConfig(n_classes=11, n_freq=256)).n_parameters()
    assert 400_000 < n < 600_000


def test_bigru_mul_multiplies_the_two_directions():
    layer = BiGRUMul(3, 4)
    x = torch.randn(2, 5, 3)
    full, _ = layer.gru(x)
    torch.testing.assert_close(layer(x), full[..., :4] * full[..., 4:])


def test_masked_loss_ignores_inactive_classes_and_unmasked_does_not():
    torch.manual_seed(0)
    logits, doa = torch.randn(2, 5, 3), torch.tanh(torch.randn(2, 5, 3, 3))
    sed_t = torch.zeros(2, 5, 3)
    sed_t[:, :, 0] = 1
    doa_t = torch.zeros(2, 5, 3, 3)
    doa_t[:, :, 0] = torch.tensor([1.0, 0.0, 0.0])
    moved = doa.clone()
    moved[:, :, 1:] += 0.3  # change only inactive classes' outputs
    masked = [seld_loss(logits, d, sed_t, doa_t, masked=True)[2] for d in (doa, moved)]
    unmasked = [seld_loss(logits, d, sed_t, doa_t, masked=False)[2] for d in (doa, moved)]
    assert masked[0] == masked[1] and unmasked[0] != unmasked[1]
    # hand value: masked MSE is the mean squared error over the active class only
    expected = ((doa[:, :, 0] - doa_t[:, :, 0]) ** 2).mean()
    torch.testing.assert_close(masked[0], expected)
    total, bce, mse = seld_loss(logits, doa, sed_t, doa_t, doa_weight=50.0)
    torch.testing.assert_close(total, bce + 50.0 * mse)
    with pytest.raises(ValueError, match="shape mismatch"):
        seld_loss(logits, doa, sed_t[:, :4], doa_t)


def test_training_lowers_the_loss_and_a_checkpoint_round_trips(tmp_path):
    torch.manual_seed(0)
    config = SceneConfig(clip_seconds=1.0)
    train, scaler = make_data(4, config, 0)
    model = SELDnet(SELDnetConfig(conv_filters=4, rnn_hidden=8, fc_hidden=8))
    history = fit(model, train, train, epochs=3, batch_size=2, lr=3e-3, seed=0, progress=False)
    assert history.train_loss[-1] < history.train_loss[0]
    assert 0 <= history.best_epoch < 3 and "seld_score" in history.best
    path = tmp_path / "seld.pt"
    save_checkpoint(path, model, scaler, {"note": "test"})
    loaded, scaler2, meta = load_checkpoint(path)
    assert meta == {"note": "test"}
    torch.testing.assert_close(scaler2.mean_, scaler.mean_)
    for a, b in zip(predict(model, train), predict(loaded, train)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert evaluate_model(loaded, train)["seld_score"] == pytest.approx(history.best["seld_score"])
    with pytest.raises(FileNotFoundError, match="no SELDnet checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path):
    config = SceneConfig(clip_seconds=1.0)
    first, scaler = make_data(4, config, 0)
    epochs = [first, make_data(4, config, 1, scaler=scaler)[0], make_data(4, config, 2, scaler=scaler)[0]]
    small = SELDnetConfig(conv_filters=4, rnn_hidden=8, fc_hidden=8)
    kwargs = dict(batch_size=2, lr=3e-3, seed=3, progress=False, state_meta={"run": "test"})

    def model(init_seed):
        torch.manual_seed(init_seed)
        return SELDnet(small)

    straight = model(0)
    whole = fit(straight, lambda e: epochs[e % 3], first, epochs=5, **kwargs)
    state = tmp_path / "run.state.pt"
    interrupted = model(0)
    part = fit(interrupted, lambda e: epochs[e % 3], first, epochs=5, max_seconds=0.0, state_path=state, **kwargs)
    assert part.stopped_by == "max_seconds" and len(part.train_loss) == 1 and state.is_file()
    resumed = model(7)  # other initial weights: the state file must replace them
    rest = fit(resumed, lambda e: epochs[e % 3], first, epochs=5, state_path=state, sitting={"note": "2nd"}, **kwargs)
    assert rest.train_loss == whole.train_loss and rest.best_epoch == whole.best_epoch
    assert [v["seld_score"] for v in rest.val] == [v["seld_score"] for v in whole.val]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert rest.sittings == [{"first_epoch": 0, "patience": None}, {"first_epoch": 1, "patience": None, "note": "2nd"}]
    assert rest.stopped_by == "epochs"
    # patience only decides when to stop: resumed with another, the steps taken are the same
    longer = tmp_path / "longer.state.pt"
    fit(model(0), lambda e: epochs[e % 3], first, epochs=5, max_seconds=0.0, state_path=longer, **kwargs)
    again = fit(model(0), lambda e: epochs[e % 3], first, epochs=5, state_path=longer, patience=50, **kwargs)
    assert again.train_loss == whole.train_loss and again.sittings[-1]["patience"] == 50
    with pytest.raises(ValueError, match=r"differs \(lr: saved 0.003, now 0.001\)"):
        fit(model(0), first, first, epochs=9, state_path=state, **(kwargs | {"lr": 1e-3}))
    with pytest.raises(ValueError, match="raise the epoch limit above 5"):
        fit(model(0), first, first, epochs=5, state_path=state, **kwargs)


def test_a_run_goes_on_from_an_earlier_one_at_the_next_epoch():
    config = SceneConfig(clip_seconds=1.0)
    first, scaler = make_data(4, config, 0)
    epochs = [first, make_data(4, config, 1, scaler=scaler)[0], make_data(4, config, 2, scaler=scaler)[0]]
    torch.manual_seed(0)
    model = SELDnet(SELDnetConfig(conv_filters=4, rnn_hidden=8, fc_hidden=8))
    kwargs = dict(batch_size=2, lr=3e-3, seed=3, progress=False)
    earlier = fit(model, lambda e: epochs[e % 3], first, epochs=2, **kwargs)  # ends on its best weights
    best = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def train(epoch):
        seen.append(epoch)
        return epochs[epoch % 3]

    later = fit(model, train, first, epochs=5, earlier=earlier, patience=1, **kwargs)
    assert seen[0] == 2 and later.train_loss[:2] == earlier.train_loss and later.val[:2] == earlier.val
    assert later.sittings[-1]["first_epoch"] == 2 and len(later.train_loss) == len(seen) + 2
    if later.best_epoch == earlier.best_epoch:  # nothing better: the earlier best weights are restored
        for k, v in model.state_dict().items():
            assert torch.equal(v, best[k]), k
    else:
        assert later.best_epoch >= 2 and later.best["seld_score"] < earlier.best["seld_score"]
    with pytest.raises(ValueError, match="not fewer than epochs=2"):
        fit(model, train, first, epochs=2, earlier=earlier, **kwargs)


def test_init_from_refuses_a_run_with_other_options(tmp_path):
    import json

    from companion.seld.experiments import SMALL, train_reference

    save_checkpoint(tmp_path / "old.pt", SELDnet(SMALL), FeatureScaler().fit(torch.randn(2, 8, 5, 128)), {})
    record = {"conditions": ["ov1-anechoic"], "phase": "relative", "scale": "default", "threads": 1,
              "model_config": {**SMALL.__dict__, "freq_pools": list(SMALL.freq_pools)}, "masked_mse": False,
              "seed": 0, "settings": {"scenes_per_epoch": 128, "batch_size": 4, "epochs": 200, "max_seconds": 3600.0,
                                      "patience": 15, "n_val": 32}}
    (tmp_path / "old.json").write_text(json.dumps(record))
    options = dict(masked=False, phase="absolute", seed=0, threads=1)
    with pytest.raises(ValueError, match="differs \\(phase: earlier 'relative', now 'absolute'\\)"):
        train_reference(["ov1-anechoic"], tmp_path / "new", init_from=tmp_path / "old", **options)
    with pytest.raises(FileNotFoundError, match="no record"):
        train_reference(["ov1-anechoic"], tmp_path / "new", init_from=tmp_path / "missing", **options)


def test_the_recorded_command_drops_the_options_of_one_sitting():
    from companion.seld.experiments import run_options

    argv = ["train", "--seed", "1", "--max-seconds", "60", "--resume", "--out", "x", "--max-seconds=5"]
    assert run_options(argv) == ["train", "--seed", "1", "--out", "x"]


def test_the_stop_reason_of_old_and_new_records():
    from companion.seld.experiments import stop_reason

    old = {"settings": {"patience": 15, "epochs": 200}, "best_epoch": 98}
    assert stop_reason(old | {"epochs_run": 114}) == "patience"
    assert stop_reason(old | {"epochs_run": 200, "best_epoch": 195}) == "epochs"
    assert stop_reason(old | {"epochs_run": 63, "settings": {"patience": None, "epochs": 200}}) == "max_seconds"
    assert stop_reason(old | {"epochs_run": 200, "stopped_by": "max_seconds"}) == "max_seconds"


def test_experiments_refuse_an_unfinished_run_and_a_device_they_cannot_use(tmp_path):
    from companion.seld.experiments import train_reference

    out = tmp_path / "model"
    options = dict(masked=False, phase="absolute", seed=0, threads=1)
    with pytest.raises(ValueError, match="no .*model.state.pt to continue from"):
        train_reference(["ov1-anechoic"], out, resume=True, **options)
    with pytest.raises(ValueError, match="'gpu' is not a torch device"):
        train_reference(["ov1-anechoic"], out, device="gpu", **options)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch.cuda.is_available"):
            train_reference(["ov1-anechoic"], out, device="cuda", **options)
    (tmp_path / "model.state.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="holds an unfinished run; pass --resume"):
        train_reference(["ov1-anechoic"], out, **options)


def test_relative_phase_carries_the_sign_of_the_direction():
    from companion.seld.scenes import Event, render_scene

    config = SceneConfig(clip_seconds=1.0, snr_db=40.0)
    medians = {}
    for az in (90.0, -90.0):
        f = stft_features(render_scene([Event(1, 0.0, 1.0, az, 0.0)], config, 0), phase="relative")
        strong = f[0] > f[0].quantile(0.9)
        medians[az] = float(f[5][strong].abs().median())  # |angle Y - angle W| on loud bins
    assert medians[90.0] < 0.1 and medians[-90.0] > np.pi - 0.1
    with pytest.raises(ValueError, match="phase must be one of"):
        stft_features(np.zeros((4, 1280)), phase="both")


def test_experiment_conditions_and_assets():
    from companion.seld.experiments import asset, scene_config

    c = scene_config("ov3-reverberant")
    assert c.overlap == 3 and c.reverberant
    assert not scene_config("ov1-anechoic").reverberant
    for bad in ("ov4-anechoic", "ov1-outdoors", "three"):
        with pytest.raises(ValueError):
            scene_config(bad)
    with pytest.raises(FileNotFoundError, match="is missing"):
        asset("no_such_checkpoint.pt")


def test_training_curves_mark_the_best_epoch_and_a_continuation():
    import matplotlib

    matplotlib.use("Agg")
    from companion.seld.plots import plot_training_curves

    val = [{"seld_score": s} for s in (0.9, 0.5, 0.4, 0.45)]
    once = {"val": val, "best_epoch": 2}
    twice = {"val": val, "best_epoch": 2, "sittings": [{"first_epoch": 0}, {"first_epoch": 1}, {"first_epoch": 3}],
             "initialised_from": {"epochs_run": 3}}  # resumed at 1 (unmarked), continued at 3
    ax = plot_training_curves([once, twice], ["a", "b"])
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [tuple(d.get_xydata()[0]) for d in dots] == [(3.0, 0.4), (3.0, 0.4)]  # 1-based epochs
    seams = [line for line in ax.lines if line.get_linestyle() == ":"]
    assert len(seams) == 1 and seams[0].get_xdata()[0] == 3.5
