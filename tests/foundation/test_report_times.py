"""tools/report_times.py --cache: the check that every notebook of the book build ran."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import report_times  # noqa: E402


def _book(tmp_path: Path, names: list[str]) -> Path:
    book = tmp_path / "book"
    for name in names:
        path = book / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"name = {name!r}")])
        nbformat.write(nb, path)
    return book


def _cache(cache_dir: Path, notebook: Path, seconds: float) -> None:
    nb = nbformat.read(notebook, as_version=4)
    get_cache(str(cache_dir)).cache_notebook_bundle(
        CacheBundleIn(nb=nb, uri=str(notebook), data={"execution_seconds": seconds}), check_validity=False
    )


def test_a_notebook_without_an_execution_record_fails(tmp_path, capsys):
    book = _book(tmp_path, ["a.ipynb", "ch/b.ipynb"])
    cache = tmp_path / "cache"
    _cache(cache, book / "a.ipynb", 1.5)
    seconds, missing = report_times.times_from_cache(cache, book)
    assert seconds == {"book/a.ipynb": 1.5}
    assert missing == ["book/ch/b.ipynb"]
    assert report_times.main([str(book), "--cache", str(cache)]) == 1
    assert "book/ch/b.ipynb" in capsys.readouterr().err


def test_every_notebook_executed_passes(tmp_path):
    book = _book(tmp_path, ["a.ipynb", "ch/b.ipynb"])
    cache = tmp_path / "cache"
    _cache(cache, book / "a.ipynb", 1.5)
    _cache(cache, book / "ch" / "b.ipynb", 70.0)  # over budget is reported, not failed
    assert report_times.main([str(book), "--cache", str(cache)]) == 0


def test_no_cache_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book-strict"):
        report_times.times_from_cache(tmp_path / "none", _book(tmp_path, ["a.ipynb"]))
