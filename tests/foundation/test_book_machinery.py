"""The book's build machinery: the cache that notices the package, and slider figures."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import cache_key  # noqa: E402

from companion.plotting import gantt_traces, line_traces, slider_figure  # noqa: E402


# ------------------------------------------------------------------ tools/cache_key.py
def _package(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "model.py").write_text("SCALE = 1\n")
    return pkg


def _cache(tmp_path):
    cache = tmp_path / "_build" / ".jupyter_cache"
    cache.mkdir(parents=True)
    (cache / "global.db").write_text("cached results")
    return cache


def test_the_cache_survives_until_the_package_changes(tmp_path):
    pkg, cache = _package(tmp_path), _cache(tmp_path)
    assert cache_key.refresh(cache, pkg) is True  # no stamp yet: start clean
    assert not cache.exists()
    cache.mkdir()
    (cache / "global.db").write_text("results of this package")
    assert cache_key.refresh(cache, pkg) is False  # nothing changed: keep it
    assert (cache / "global.db").exists()
    (pkg / "sub" / "model.py").write_text("SCALE = 2\n")  # an edit deep in the package
    assert cache_key.refresh(cache, pkg) is True
    assert not cache.exists()


def test_sphinx_environment_goes_with_the_cache(tmp_path):
    """Sphinx re-reads only changed sources: its saved environment must go too, or an unchanged
    notebook is neither read nor executed after a package edit."""
    pkg, cache = _package(tmp_path), _cache(tmp_path)
    doctrees = tmp_path / "_build" / ".doctrees"
    cache_key.refresh(cache, pkg, [doctrees])
    doctrees.mkdir()
    (doctrees / "environment.pickle").write_text("env")
    assert cache_key.refresh(cache, pkg, [doctrees]) is False and doctrees.exists()
    (pkg / "sub" / "model.py").write_text("SCALE = 3\n")
    assert cache_key.refresh(cache, pkg, [doctrees]) is True
    assert not doctrees.exists()


def test_a_new_or_renamed_module_changes_the_key(tmp_path):
    pkg = _package(tmp_path)
    before = cache_key.package_hash(pkg)
    (pkg / "sub" / "model.py").rename(pkg / "sub" / "other.py")
    renamed = cache_key.package_hash(pkg)
    (pkg / "extra.py").write_text("")
    assert len({before, renamed, cache_key.package_hash(pkg)}) == 3


def test_cache_key_refuses_a_missing_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cache_key.package_hash(tmp_path / "nope")


def test_make_clears_the_cache_before_every_book_build():
    for target in ("book", "book-strict"):
        out = subprocess.run(["make", "-n", target, "VENV=/nonexistent", "STAMP=/dev/null"],
                             cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
        key = [i for i, line in enumerate(out) if "tools/cache_key.py" in line]
        build = [i for i, line in enumerate(out) if "jb build" in line]
        assert key and build and key[0] < build[0], (target, out)


# ------------------------------------------------------------------ companion.plotting
def _lines(a, b=1):
    return line_traces([0, 1], {"y": [a, a * b]})


def test_slider_figure_precomputes_every_combination_in_row_major_order():
    fig = slider_figure(_lines, {"a": [1.0, 2.0, 3.0], "b": [1, 10]}, defaults={"a": 2.0})
    assert len(fig.frames) == 6
    assert fig.frame(a=3.0, b=10)[0]["y"] == [3.0, 30.0]
    assert fig.figure.data[0].y == (2.0, 2.0)  # drawn at the default
    assert [s.active for s in fig.figure.layout.sliders] == [1, 0]
    html = fig.to_html()
    assert 'class="overlap-slider-figure"' in html and "window.Plotly" in html
    assert "cdn" not in html.lower() and "<script src" not in html


def test_slider_figure_stores_each_repeated_curve_once():
    # y1 takes 3 values and y2 2 over the 6 frames: the pool holds 5 arrays, not 12
    fig = slider_figure(lambda a, b: line_traces([0, 1], {"y1": [a, a], "y2": [b, b * 2]}),
                        {"a": [1.0, 2.0, 3.0], "b": [1.0, 2.0]})
    assert len(fig.frames) == 6 and len(fig.pool) == 3 + 2


@pytest.mark.parametrize("grid, kwargs, match", [
    ({}, {}, "non-empty dict"),
    ({"a": []}, {}, r"grid\['a'\] is empty"),
    ({"a": list(range(30)), "b": list(range(30))}, {}, r"30 \(a\) x 30 \(b\) = 900 combinations"),
    ({"a": [1.0, 2.0]}, {"defaults": {"a": 5.0}}, r"default a=5.0 is not one of"),
    ({"a": [1.0, 2.0]}, {"defaults": {"c": 1}}, "not in the grid"),
    ({"a": [1.0, 2.0], "b": [1, 2]}, {}, None),
])
def test_slider_figure_rejects_bad_grids(grid, kwargs, match):
    if match is None:
        slider_figure(_lines, grid, **kwargs)
        return
    with pytest.raises(ValueError, match=match):
        slider_figure(_lines, grid, **kwargs)


def test_slider_figure_rejects_a_slider_that_changes_nothing():
    with pytest.raises(ValueError, match="slider of 'b' changes nothing"):
        slider_figure(lambda a, b: _lines(a), {"a": [1.0, 2.0], "b": [1, 2]})


def test_slider_figure_rejects_frames_with_different_traces():
    def compute(a):
        return _lines(a) if a == 1 else _lines(a) + _lines(a)
    with pytest.raises(ValueError, match="every combination must return the same traces"):
        slider_figure(compute, {"a": [1, 2]})


def test_gantt_traces_keep_two_traces_whatever_the_spans():
    from companion.comm import Span

    spans = [Span(0, "mm", "compute", 0.0, 0.002), Span(0, "ar", "comm", 0.001, 0.004)]
    compute, comm = gantt_traces({"step": spans, "idle": [Span(0, "ar", "comm", 0.0, 0.001)]})
    # the lane without compute gets a zero-width empty trace, so rows keep the lanes' order
    assert (compute["base"], compute["x"], compute["y"]) == ([0.0, 0.0], [2.0, 0.0],
                                                            ["step", "idle"])
    assert comm["base"] == [1.0, 0.0] and comm["y"] == ["step", "idle"]
    assert len(gantt_traces({})) == 2
    with pytest.raises(ValueError, match="neither 'compute' nor 'comm'"):
        gantt_traces({"x": [Span(0, "io", "disk", 0.0, 1.0)]})
