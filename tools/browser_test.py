"""Open every page of the built book in headless Chromium, offline, and check what a reader sees.

    python tools/browser_test.py _build/html --screenshots _build/screenshots [--toc _toc.yml]

The book is served on 127.0.0.1 from a free port; Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium) reaches nothing else: every other host goes through a
proxy that does not exist. For each page it checks

1. no ``<script src>`` or stylesheet ``<link>`` points off the machine, and no resource the page
   loaded came from anywhere but 127.0.0.1;
2. math is typeset: MathJax finished, each math element became MathJax output, and no raw
   ``\\(``, ``\\[`` or ``$$`` is left in the visible text (code excluded), and no ``{eval}`` or
   ``{glue}`` role is left unresolved in the page (inside math, say);
3. no JavaScript error reached the console;
4. every interactive figure (``companion.plotting.slider_figure``) responds to a step of each
   of its sliders: the trace data after the click differ from the data before;
5. every internal link resolves to an existing page, and its ``#fragment`` to an element id;
6. the HTML file is under 5 MB.

It saves a screenshot of each chapter's first page (and of the first interactive figure of every
page that has one) under ``--screenshots``. Each failure names the page and the element. Exit
status 1 on any failure, 0 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

MAX_PAGE_BYTES = 5 * 1024 * 1024
FIGURE_CLASS = "overlap-slider-figure"
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}


# ---------------------------------------------------------------- static checks (no browser)
class _PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links, self.remote, self.scripts = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href") is not None:
            self.links.append(a["href"])
        if tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        if tag == "script" and _is_remote(a.get("src")):
            self.remote.append(f"<script src={a['src']!r}>")
        if tag == "link" and "stylesheet" in (a.get("rel") or "") and _is_remote(a.get("href")):
            self.remote.append(f"<link rel=stylesheet href={a['href']!r}>")


def _is_remote(url: str | None) -> bool:
    return bool(url) and bool(re.match(r"^(https?:)?//", url.strip()))


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def static_problems(root: Path, page: Path) -> list[str]:
    """Remote scripts or stylesheets, broken internal links, and an oversized file."""
    rel = page.relative_to(root).as_posix()
    problems = []
    parsed = _parse(page)
    problems += [f"{rel}: {r} needs the network" for r in parsed.remote]
    plotly = [src for src in parsed.scripts if "plotly" in src.rsplit("/", 1)[-1]]
    if len(plotly) > 1:
        problems.append(f"{rel}: plotly.js is loaded {len(plotly)} times: {plotly}")
    for href in parsed.links:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:")):
            continue
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file() or root.resolve() not in target.resolve().parents:
            problems.append(f"{rel}: link <a href={href!r}> points to a missing page")
            continue
        frag = unquote(parts.fragment)
        if frag and target.suffix == ".html" and frag not in _parse(target).ids:
            problems.append(f"{rel}: link <a href={href!r}> points to a missing anchor #{frag}")
    size = page.stat().st_size
    if size > MAX_PAGE_BYTES:
        problems.append(f"{rel}: the page is {size / 2**20:.1f} MB, over the 5 MB budget")
    return problems


def _is_redirect(page: Path) -> bool:
    head = page.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def book_pages(root: Path) -> list[Path]:
    """Every page a reader opens: not Sphinx's index pages, assets, or redirect stubs."""
    pages = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root)
        if rel.parts[0].startswith("_") or rel.name in SKIP_PAGES or _is_redirect(p):
            continue
        pages.append(p)
    return pages


def chapter_first_pages(root: Path, toc: Path | None) -> list[Path]:
    """The root page and each chapter's page of the table of contents that exist in the build."""
    if toc is None or not toc.is_file():
        return [p for p in book_pages(root) if p.name == "index.html"]
    import yaml

    data = yaml.safe_load(toc.read_text())
    files = [data.get("root")]
    for part in data.get("parts", []):
        files += [ch.get("file") for ch in part.get("chapters", [])]
    pages = [root / f"{f}.html" for f in files if f]
    return [p for p in pages if p.is_file()]


# ---------------------------------------------------------------- the browser
@dataclass
class Report:
    pages: int = 0
    figures: int = 0
    sliders: int = 0
    largest: tuple[int, str] = (0, "")
    problems: list[str] = field(default_factory=list)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_chromium(profile_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,1000",
                f"--user-data-dir={profile_dir}",
                # offline: every host but the book's server goes to a proxy that does not exist
                "--proxy-server=http://127.0.0.1:9"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


_WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
const t0 = Date.now();
const script = document.querySelector("script[src*='mathjax' i]");
const math = document.querySelector(".math");
(function poll() {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) {
    mj.startup.promise.then(() => done("ok"), (e) => done("error: " + e));
  } else if (!script) { done(math ? "MathJax never loaded (the page has no MathJax script)"
                                   : "no math");
  } else if (Date.now() - t0 > 8000) {
    done(document.querySelector(".math") ? "MathJax never loaded" : "no math");
  } else { setTimeout(poll, 50); }
})();
"""

_RAW_MATH = """
const clone = document.body.cloneNode(true);
clone.querySelectorAll("pre, code, script, style, .highlight, mjx-container, .MathJax")
  .forEach((e) => e.remove());
const host = document.createElement("div");
host.style.position = "absolute"; host.style.left = "-99999px";
host.appendChild(clone); document.body.appendChild(host);
const text = clone.innerText; host.remove();
const m = text.match(/\\\\\\(|\\\\\\[|\\$\\$/);
const untypeset = [];
document.querySelectorAll("span.math, div.math").forEach((e) => {
  if (!e.querySelector("mjx-container") && !e.closest("mjx-container")) {
    untypeset.push(e.outerHTML.slice(0, 160));
  }
});
return {raw: m ? text.slice(Math.max(0, m.index - 40), m.index + 60) : null, untypeset,
        typeset: document.querySelectorAll("mjx-container").length};
"""

def unresolved_roles(html: str) -> list[str]:
    """``{eval}``/``{glue...}`` roles left in a built page outside code (e.g. inside math)."""
    import re

    text = re.sub(r"<(pre|code|script|style)\b.*?</\1>", "", html, flags=re.S | re.I)
    return [m.group(0)[:80] for m in re.finditer(r"\{(eval|glue)[:a-z]*\}`[^`]*`?", text)][:3]


_TRACE_DATA = """
const gd = document.getElementById(arguments[0]);
return JSON.stringify((gd.data || []).map((t) => [t.x, t.y, t.base, t.z, t.text]))
  + JSON.stringify(gd.layout && gd.layout.title ? gd.layout.title.text || "" : "");
"""

_REMOTE_RESOURCES = """
return performance.getEntriesByType("resource").map((e) => e.name)
  .filter((u) => !u.startsWith(location.origin) && !u.startsWith("data:"));
"""


def check_figures(driver, rel: str, report: Report, shot: Path | None) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, f".{FIGURE_CLASS}")
    for n, box in enumerate(boxes):
        report.figures += 1
        plots = box.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
        fig_id = box.get_attribute("id")
        if not plots:
            report.problems.append(f"{rel}: figure #{fig_id} did not render (no plotly plot)")
            continue
        div_id = plots[0].get_attribute("id")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        sliders = plots[0].find_elements(By.CSS_SELECTOR, "g.slider-group")
        if not sliders:
            report.problems.append(f"{rel}: figure #{fig_id} has no slider")
        for k, slider in enumerate(sliders):
            report.sliders += 1
            labels = slider.find_elements(By.CSS_SELECTOR, "g.slider-label-group")
            active = driver.execute_script(
                "return document.getElementById(arguments[0]).layout.sliders[arguments[1]]"
                ".active || 0", div_id, k)
            target = 0 if active != 0 else len(labels) - 1
            if len(labels) < 2:
                report.problems.append(f"{rel}: figure #{fig_id} slider {k} has one step")
                continue
            before = driver.execute_script(_TRACE_DATA, div_id)
            ActionChains(driver).move_to_element(labels[target]).click().perform()
            after, t0 = before, time.time()
            while after == before and time.time() - t0 < 2.0:
                time.sleep(0.05)
                after = driver.execute_script(_TRACE_DATA, div_id)
            now = driver.execute_script(
                "return document.getElementById(arguments[0]).layout.sliders[arguments[1]]"
                ".active", div_id, k)
            if now != target:
                report.problems.append(f"{rel}: figure #{fig_id} slider {k}: a click on step "
                                       f"{target} left the slider at step {now}")
            elif after == before:
                report.problems.append(f"{rel}: figure #{fig_id} slider {k}: moving it to step "
                                       f"{target} did not change the trace data (dead slider)")
        if shot is not None and n == 0:
            shot.parent.mkdir(parents=True, exist_ok=True)
            box.screenshot(str(shot))


def run(root: Path, screenshots: Path | None, toc: Path | None, pages: list[Path] | None = None,
        verbose: bool = False) -> Report:
    root = root.resolve()
    pages = pages or book_pages(root)
    report = Report()
    if not pages:
        report.problems.append(f"{root}: no HTML pages to check (build the book first)")
        return report
    firsts = set(chapter_first_pages(root, toc)) if screenshots else set()
    server = serve(root)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    with tempfile.TemporaryDirectory(prefix="overlap-chromium-") as profile:
        driver = start_chromium(profile)
        try:
            driver.set_page_load_timeout(30)
            driver.set_script_timeout(15)
            for page in pages:
                t_page = time.time()
                rel = page.relative_to(root).as_posix()
                report.pages += 1
                report.problems += static_problems(root, page)
                size = page.stat().st_size
                report.largest = max(report.largest, (size, rel))
                driver.get_log("browser")  # drop what an earlier page left
                driver.get(urljoin(base, rel))
                state = driver.execute_async_script(_WAIT_MATHJAX)
                if state not in ("ok", "no math"):
                    report.problems.append(f"{rel}: MathJax: {state}")
                for role in unresolved_roles(page.read_text(encoding="utf-8")):
                    report.problems.append(f"{rel}: an unresolved MyST role in the page: {role}")
                math = driver.execute_script(_RAW_MATH)
                if math["raw"]:
                    report.problems.append(f"{rel}: untypeset math in the text: "
                                           f"...{math['raw'].strip()}...")
                for element in math["untypeset"][:3]:
                    report.problems.append(f"{rel}: math element not typeset: {element}")
                stem = rel[:-len(".html")].replace("/", "__")
                shot = screenshots / f"{stem}__figure.png" if screenshots else None
                check_figures(driver, rel, report, shot)
                if page in firsts:
                    driver.execute_script("window.scrollTo(0, 0)")
                    screenshots.mkdir(parents=True, exist_ok=True)
                    driver.save_screenshot(str(screenshots / f"{stem}.png"))
                for url in driver.execute_script(_REMOTE_RESOURCES):
                    report.problems.append(f"{rel}: loaded {url} from off the machine")
                for entry in driver.get_log("browser"):
                    if entry.get("level") == "SEVERE" and "favicon.ico" not in entry.get(
                            "message", ""):
                        report.problems.append(f"{rel}: JavaScript console error: "
                                               f"{entry.get('message', '')[:300]}")
                if verbose:
                    print(f"  {rel}: {time.time() - t_page:.1f} s, {math['typeset']} formulas",
                          flush=True)
        finally:
            driver.quit()
            server.shutdown()
            server.server_close()
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    ap.add_argument("--screenshots", type=Path, default=None)
    ap.add_argument("--toc", type=Path, default=Path("_toc.yml"))
    ap.add_argument("--json", type=Path, default=None, help="write the report as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each page as it is done")
    args = ap.parse_args(argv)
    t0 = time.time()
    report = run(args.html, args.screenshots, args.toc, verbose=args.verbose)
    seconds = time.time() - t0
    for p in report.problems:
        print("FAIL", p)
    size, page = report.largest
    print(f"browser test: {report.pages} pages, {report.figures} interactive figures "
          f"({report.sliders} sliders) checked in {seconds:.0f} s; largest page {page} "
          f"{size / 2**20:.2f} MB; screenshots in {args.screenshots}; "
          f"{len(report.problems)} problems")
    if args.json:
        args.json.write_text(json.dumps({**report.__dict__, "seconds": seconds}, indent=1))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
