"""tools/browser_test.py on tiny synthetic books: a good page passes, each bad page is named.

Needs Debian's chromium and chromium-driver; skipped (with the reason) without them.
"""

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import browser_test  # noqa: E402
from overlap_static import plotly_js_path  # noqa: E402

from companion.plotting import line_traces, slider_figure  # noqa: E402

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="SKIPPED: install chromium chromium-driver")


def _mathjax_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    return Path(spec.origin).parent / "static" / "mathjax"


HEAD = """<html><head><script src="plotly.min.js"></script>
<script>window.MathJax = {options: {processHtmlClass: "math"}};</script>
<script defer src="mathjax/tex-chtml.js"></script></head><body>"""


def _figure(dead=False):
    fig = slider_figure(lambda a, b: (line_traces([0, 1, 2], {"y": [0, a, a * b]}), f"a={a}"),
                        {"a": [1.0, 2.0, 3.0], "b": [1, 2]},
                        defaults=None if dead else {"a": 2.0},
                        layout={"yaxis": {"range": [0, 7]}}, height=300)
    if dead:  # every combination shows the first one's traces: sliders move, nothing changes
        fig.frames = [fig.frames[0]] * len(fig.frames)
        fig.titles = None
    return fig


def _write(book: Path, name: str, body: str, head: str = HEAD) -> Path:
    page = book / name
    page.write_text(head + body + "</body></html>")
    return page


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """One Chromium session over a good page and one page per kind of bad input."""
    book = tmp_path_factory.mktemp("book")
    shutil.copyfile(plotly_js_path(), book / "plotly.min.js")
    shutil.copytree(_mathjax_dir(), book / "mathjax")
    dead = _figure(dead=True)
    pages = [
        _write(book, "other.html", '<h1 id="there">x</h1>'),
        _write(book, "good.html",
               '<p>Inline <span class="math">\\(x^2\\)</span>, <a href="other.html#there">a '
               'link</a>, <a href="#top" id="top">self</a>.</p>' + _figure().to_html()),
        # MathJax never runs on this page (as when a page asks a CDN for it, offline)
        _write(book, "raw.html", '<p>Unprocessed <span class="math">\\(T &gt; 0\\)</span></p>',
               head="<html><body>"),
        _write(book, "links.html", '<a href="nowhere.html">a</a> <a href="other.html#gone">b</a>'),
        _write(book, "dead.html", dead.to_html()),
        # a role inside math is never resolved: the book would show it raw
        _write(book, "role.html", '<p><span class="math">\\((\\{eval}`glued("k")` \\times 2)\\)</span>'
                                  ' and <code>{eval}`glued("in-code")`</code></p>'),
        _write(book, "js.html", '<script>notDefinedAnywhere()</script>'
                                '<script src="https://cdn.example.org/x.js"></script>'
                                '<script src="plotly.min.js"></script>'),
    ]
    report = browser_test.run(book, book / "shots", None, pages=pages)
    return book, report, dead


def _on(report, page):
    return [p for p in report.problems if p.startswith(page + ": ")]


def test_a_good_page_passes_and_its_figure_responds(checked):
    book, report, _ = checked
    assert _on(report, "good.html") == [] and _on(report, "other.html") == []
    assert (report.pages, report.figures, report.sliders) == (7, 2, 4)
    assert (book / "shots" / "good__figure.png").stat().st_size > 1000


def test_untypeset_math_is_named_with_the_page_and_the_text(checked):
    problems = _on(checked[1], "raw.html")
    assert any(p.startswith("raw.html: untypeset math") and "T > 0" in p for p in problems)
    assert any(p.startswith("raw.html: MathJax: MathJax never loaded") for p in problems)
    assert any(p.startswith('raw.html: math element not typeset: <span class="math">')
               for p in problems)


def test_an_unresolved_role_is_named_but_code_is_not(checked):
    _, report, _ = checked
    found = _on(report, "role.html")
    assert any("unresolved MyST role" in p and 'glued("k")' in p for p in found), found
    assert not any("in-code" in p for p in found), found


def test_a_broken_link_and_a_missing_anchor_are_named(checked):
    problems = _on(checked[1], "links.html")
    assert "links.html: link <a href='nowhere.html'> points to a missing page" in problems
    assert "links.html: link <a href='other.html#gone'> points to a missing anchor #gone" \
        in problems


def test_a_dead_slider_is_named_with_the_figure(checked):
    _, report, dead = checked
    problems = _on(report, "dead.html")
    assert len(problems) == 2, problems  # both sliders
    assert all(p.startswith(f"dead.html: figure #{dead.div_id}-box slider ")
               and p.endswith("did not change the trace data (dead slider)") for p in problems)


def test_javascript_errors_and_network_scripts_are_named(checked):
    problems = _on(checked[1], "js.html")
    assert any(p.startswith("js.html: JavaScript console error") and "notDefinedAnywhere" in p
               for p in problems)
    assert "js.html: <script src='https://cdn.example.org/x.js'> needs the network" in problems
    assert any(p.startswith("js.html: plotly.js is loaded 2 times") for p in problems)
