"""One source for computed numbers in prose: ``{eval}`glued("key:fmt")``` (companion.glue).

The kernel's text (what JupyterLab shows) is checked against what a real Sphinx build of an
executed notebook pastes through tools/overlap_glue.py (what the HTML book shows).
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from companion.glue import GLUED_CALL, glue, glued, split_spec

ROOT = Path(__file__).resolve().parents[2]

VALUES = {"g-float": (0.123456, ".3f"), "g-pct": (0.0734, ".1%"),
          "g-int": (12345, ",d"), "g-str": ("ring", ""), "g-sci": (3.2e-7, ".2g")}


def test_split_spec_follows_the_glue_role():
    assert split_spec("a-b:.3f") == ("a-b", ".3f")
    assert split_spec("plain") == ("plain", "")


def test_glued_call_grammar():
    assert GLUED_CALL.match('glued("x-y:.2f")').group("spec") == "x-y:.2f"
    assert GLUED_CALL.match("glued('x')").group("spec") == "x"
    assert GLUED_CALL.match("x + 1") is None


def test_glued_reports_a_missing_key_and_bad_names():
    with pytest.raises(KeyError, match="run the code cell"):
        glued("never-glued:.2f")
    with pytest.raises(ValueError, match="without ':'"):
        glue("a:b", 1, display=False)


def _notebook(tmp_path: Path, prose: str) -> Path:
    code = ["from companion.glue import glue, glued", "import numpy as np"]
    for key, (value, _) in VALUES.items():
        code.append(f"glue({key!r}, {value!r}, display=False)")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("\n".join(code)), nbformat.v4.new_markdown_cell(prose)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "page.ipynb"
    nbformat.write(nb, path)
    (tmp_path / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'tools')!r})\n"
        "extensions = ['myst_nb', 'overlap_glue']\n"
        "nb_execution_mode = 'force'\n"
        "root_doc = 'page'\n")
    return path


def _build(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "-b", "html", "-q", str(tmp_path),
                           str(tmp_path / "_html")], capture_output=True, text=True, env=env, timeout=240)


def test_the_html_shows_what_the_kernel_shows(tmp_path):
    prose = " ".join(f'[{key}]{{eval}}`glued("{key}:{fmt}")`[/]' if fmt else
                     f"[{key}]{{eval}}`glued('{key}')`[/]" for key, (_, fmt) in VALUES.items())
    _notebook(tmp_path, prose)
    run = _build(tmp_path)
    assert run.returncode == 0, run.stderr
    html = (tmp_path / "_html" / "page.html").read_text()
    for key, (value, fmt) in VALUES.items():
        glue(key, value, display=False)
        kernel_text = str(glued(f"{key}:{fmt}" if fmt else key))
        pasted = re.search(rf"\[{key}\]<span class=\"pasted-text\">(.*?)</span>\[/\]", html)
        assert pasted is not None, f"{key} was not pasted: {html[:2000]}"
        assert pasted.group(1) == kernel_text, (key, pasted.group(1), kernel_text)


def test_an_expression_the_book_cannot_resolve_fails_the_strict_build(tmp_path):
    _notebook(tmp_path, "the sum is {eval}`1 + 1`")
    run = _build(tmp_path)
    assert run.returncode != 0
    assert 'glued("key:fmt")' in run.stderr
