"""Run notebooks under nbval and report how long each took.

Usage::

    python tools/nbtest.py [NOTEBOOK_OR_DIR ...] [--times-json PATH] [-- EXTRA PYTEST ARGS]

Defaults to every notebook under ``book/``. The exit code is pytest's: non-zero when any cell
raises or any hidden assertion fails. ``tests/test_nbval_catches_errors.py`` runs a deliberately
broken notebook through this same entry point and expects a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The nbval invocation shared by `make test` and the tests: run every cell on a fresh kernel of
#: this environment; fail on errors and on the hidden assert cells; compare no outputs (the
#: notebooks are committed without outputs).
NBVAL_ARGS = [
    "--nbval-lax",
    "--nbval-current-env",
    "--nbval-cell-timeout=300",
    "-p", "no:cacheprovider",
    "-q",
    "-o", "addopts=",
    "-o", "testpaths=",
    "-W", "ignore::DeprecationWarning",
]


class NotebookTimer:
    """pytest plugin: sums the duration of every cell item per notebook file."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.failed: set[str] = set()

    def pytest_runtest_logreport(self, report) -> None:
        path = report.nodeid.split("::", 1)[0]
        self.seconds[path] += report.duration
        if report.failed:
            self.failed.add(path)

    def report(self) -> list[tuple[str, float, bool]]:
        return sorted(((p, s, p in self.failed) for p, s in self.seconds.items()),
                      key=lambda row: -row[1])


def collect(paths: list[str]) -> list[str]:
    found: list[str] = []
    for raw in paths or [str(ROOT / "book")]:
        p = Path(raw)
        if p.is_dir():
            found += sorted(str(q) for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        elif p.suffix == ".ipynb" and p.exists():
            found.append(str(p))
        else:
            raise SystemExit(f"nbtest: {raw} is neither a notebook nor a folder")
    return found


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--times-json", default=None, help="write per-notebook seconds here")
    args = parser.parse_args(argv)
    notebooks = collect(args.paths)
    if not notebooks:
        print("nbtest: no notebooks found")
        return 1
    timer = NotebookTimer()
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    start = time.perf_counter()
    code = pytest.main(NBVAL_ARGS + extra + notebooks, plugins=[timer])
    wall = time.perf_counter() - start
    rows = timer.report()
    print("\nNotebook execution times (nbval, slowest first):")
    for path, seconds, failed in rows:
        flag = "  FAILED" if failed else ""
        print(f"  {seconds:7.1f} s  {path}{flag}")
    print(f"  {wall:7.1f} s  total wall time for {len(notebooks)} notebooks")
    if args.times_json:
        Path(args.times_json).write_text(json.dumps(
            {"wall_s": wall, "notebooks": {p: {"seconds": s, "failed": f} for p, s, f in rows}},
            indent=2))
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
