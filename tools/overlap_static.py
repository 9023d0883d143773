"""Sphinx extension of the book: serve plotly.js from ``_static``, on the pages that need it.

The interactive figures of the book (``companion.plotting.slider_figure``) are written without
plotly.js, so a page with three figures does not carry three 4.6 MB copies of it. This extension
copies the ``plotly.min.js`` that ships inside the ``plotly`` package into ``_static/`` once, and
adds one ``<script>`` for it to each page whose body holds an interactive figure, and only there.
Nothing is fetched from the network, at build time or when the page is read. It also drops the
inline scripts that the theme's extensions register twice (a console error on every page), and
loads MathJax on every page (the proof index lists theorem titles with math).
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: The class every interactive figure's container carries (see companion.plotting).
FIGURE_CLASS = "overlap-slider-figure"
PLOTLY_JS = "plotly.min.js"


def plotly_js_path() -> Path:
    """The plotly.js bundle that the installed ``plotly`` package ships."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall plotly (pip install plotly)")
    return path


def _add_plotly_to_pages_with_figures(app, pagename, templatename, context, doctree):
    if FIGURE_CLASS in context.get("body", ""):
        # Called inside html-page-context, add_js_file adds the script to this page only.
        app.add_js_file(PLOTLY_JS, priority=400)
    _drop_repeated_inline_scripts(context)


def _drop_repeated_inline_scripts(context):
    """Keep one copy of each inline script.

    Under jupyter-book 1, sphinx-thebe and sphinx-togglebutton register their inline
    configuration twice, and the second ``const THEBE_JS_URL = ...`` is a JavaScript
    SyntaxError on every page (the browser test saw it in the console).
    """
    seen, kept = set(), []
    for script in context.get("script_files", []):
        body = getattr(script, "attributes", {}).get("body")
        inline = body and not getattr(script, "filename", None)  # filename None or ''
        if inline and body in seen:
            continue
        if inline:
            seen.add(body)
        kept.append(script)
    if "script_files" in context:
        context["script_files"][:] = kept


def _copy_plotly_js(app, exc):
    if exc is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plotly_js_path(), static / PLOTLY_JS)


def setup(app):
    plotly_js_path()  # fail at start-up, not after a 5-minute build
    # MathJax on every page, not only where Sphinx saw an equation node: sphinx-proof's index
    # page (prf-prf.html) lists theorem titles with inline math and would show them raw.
    app.set_html_assets_policy("always")
    app.connect("html-page-context", _add_plotly_to_pages_with_figures)
    app.connect("build-finished", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
