import numpy as np
import pytest
import torch

from companion import scale, seeding, timing


def test_seed_everything_makes_numpy_and_torch_repeatable():
    g1 = seeding.seed_everything(3)
    a = (g1.normal(size=3), torch.randn(3), np.random.rand())
    g2 = seeding.seed_everything(3)
    b = (g2.normal(size=3), torch.randn(3), np.random.rand())
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])
    assert a[2] == b[2]
    seeding.seed_everything(4)
    assert not torch.equal(a[1], torch.randn(3))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        seeding.seed_everything(bad)


def test_as_generator_refuses_none_and_passes_generators_through():
    g = np.random.default_rng(0)
    assert seeding.as_generator(g) is g
    assert seeding.as_generator(5).integers(100) == np.random.default_rng(5).integers(100)
    with pytest.raises(ValueError, match="irreproducible"):
        seeding.as_generator(None)


def test_scale_switch(monkeypatch):
    monkeypatch.delenv(scale.ENV_VAR, raising=False)
    assert scale.current() == "default"
    assert scale.pick(default=1, paper=2) == 1
    monkeypatch.setenv(scale.ENV_VAR, "paper")
    assert scale.is_paper() and scale.pick(default=1, paper=2) == 2
    monkeypatch.setenv(scale.ENV_VAR, "huge")
    with pytest.raises(ValueError, match="COMPANION_SCALE"):
        scale.current()


def test_stopwatch_and_median_time():
    calls = []
    with timing.Stopwatch() as sw:
        sum(range(1000))
    assert sw.seconds >= 0
    t = timing.median_time(lambda: calls.append(1), repeats=3, warmup=2)
    assert t >= 0 and len(calls) == 5
    with pytest.raises(ValueError, match="repeats"):
        timing.median_time(lambda: None, repeats=0)


def test_progress_while_fills_its_bar_and_rejects_bad_estimates():
    with timing.ProgressWhile("wait", expected_s=0.05, tick_s=0.01) as bar:
        import time

        time.sleep(0.03)
    assert bar.seconds >= 0.03 and bar._bar.n == bar._bar.total
    with pytest.raises(ValueError, match="expected_s must be > 0"):
        timing.ProgressWhile("wait", expected_s=0)
    with pytest.raises(ValueError, match="tick_s must be > 0"):
        timing.ProgressWhile("wait", expected_s=1, tick_s=-1)


def test_write_result_stores_the_result_and_where_it_came_from(tmp_path):
    import json

    import pytest

    from companion.provenance import write_result

    path = write_result(tmp_path / "sub" / "r.json", {"x": [1, 2]}, "python -m demo")
    stored = json.loads(path.read_text())
    assert stored["x"] == [1, 2] and stored["provenance"]["command"] == "python -m demo"
    assert set(stored["provenance"]) >= {"git_commit", "device", "date_utc", "load_average"}
    with pytest.raises(ValueError, match="provenance"):
        write_result(tmp_path / "r2.json", stored, "again")
