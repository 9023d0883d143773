"""The notebook test must fail when a notebook raises or a hidden claim breaks."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _write(path: Path, cells: list) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _run_nbtest(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "nbtest.py"), str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("source", ["raise RuntimeError('broken on purpose')",
                                    "assert 1 + 1 == 3, 'a drifting claim'"])
def test_a_broken_notebook_fails_the_run(tmp_path, source):
    nb = _write(tmp_path / "broken.ipynb", [
        nbformat.v4.new_markdown_cell("# Broken"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(source, metadata={"tags": ["remove-cell"]}),
    ])
    result = _run_nbtest(nb)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "FAILED" in result.stdout


def test_a_sound_notebook_passes(tmp_path):
    nb = _write(tmp_path / "fine.ipynb", [
        nbformat.v4.new_markdown_cell("# Fine"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("assert x == 1", metadata={"tags": ["remove-cell"]}),
    ])
    result = _run_nbtest(nb)
    assert result.returncode == 0, result.stdout[-2000:]
