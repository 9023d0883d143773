"""Report each notebook's execution time, slowest first, and check that every notebook ran.

Two sources, one report::

    python tools/report_times.py _build/notebook-times.json          # written by tools/nbtest.py
    python tools/report_times.py --cache _build/.jupyter_cache book   # the book build's executions

``make test`` executes every notebook once, in the strict book build, after emptying the
execution cache; the second form then reads jupyter-cache's records of that build and exits
non-zero when a notebook under ``book/`` has none (it did not execute, or it failed: jupyter-cache
keeps only successful executions). Times are reported against the 60 s budget, not enforced:
speed goals live in ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BUDGET_S = 60.0


def times_from_nbtest(path: Path) -> tuple[dict[str, float], float]:
    """``{notebook: seconds}`` and the total wall time from ``tools/nbtest.py --times-json``."""
    data = json.loads(Path(path).read_text())
    return {name: row["seconds"] for name, row in data["notebooks"].items()}, data["wall_s"]


def times_from_cache(cache_dir: Path, book_dir: Path) -> tuple[dict[str, float], list[str]]:
    """``{notebook: seconds}`` from jupyter-cache, and the notebooks under ``book_dir`` it lacks."""
    from jupyter_cache import get_cache

    cache_dir, book_dir = Path(cache_dir), Path(book_dir).resolve()
    if not cache_dir.is_dir():
        raise FileNotFoundError(f"no execution cache at {cache_dir}: build the book first (make book-strict)")
    seconds = {}
    for record in get_cache(str(cache_dir)).list_cache_records():
        path = Path(record.uri).resolve()
        if path.is_relative_to(book_dir):
            seconds[str(path.relative_to(book_dir.parent))] = float(record.data["execution_seconds"])
    expected = sorted(str(p.resolve().relative_to(book_dir.parent)) for p in book_dir.rglob("*.ipynb")
                      if ".ipynb_checkpoints" not in p.parts)
    return seconds, [nb for nb in expected if nb not in seconds]


def report(seconds: dict[str, float], how: str, total_s: float | None = None) -> None:
    print(f"\nPer-notebook execution time, {how} (slowest first; budget {BUDGET_S:.0f} s each):")
    for name, s in sorted(seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {s:7.1f} s  {name}{'  OVER BUDGET' if s > BUDGET_S else ''}")
    print(f"  {sum(seconds.values()) if total_s is None else total_s:7.1f} s  all notebooks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", nargs="?", default="_build/notebook-times.json",
                        help="nbtest's times JSON, or with --cache the book folder")
    parser.add_argument("--cache", help="a jupyter-cache folder written by the book build")
    args = parser.parse_args(argv)
    if args.cache is None:
        seconds, wall = times_from_nbtest(Path(args.source))
        report(seconds, "under nbval", wall)
        return 0
    seconds, missing = times_from_cache(Path(args.cache), Path(args.source))
    report(seconds, "in the book build")
    if missing:
        print(f"\nFAILED: {len(missing)} notebook(s) have no successful execution in {args.cache}: "
              + ", ".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
