"""Print the per-notebook execution times recorded by ``tools/nbtest.py``, slowest first."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BUDGET_S = 60.0


def main(path: str) -> int:
    data = json.loads(Path(path).read_text())
    rows = sorted(data["notebooks"].items(), key=lambda kv: -kv[1]["seconds"])
    print("\nPer-notebook execution time under nbval (slowest first; budget 60 s each):")
    for name, row in rows:
        mark = "  OVER BUDGET" if row["seconds"] > BUDGET_S else ""
        print(f"  {row['seconds']:7.1f} s  {name}{mark}")
    print(f"  {data['wall_s']:7.1f} s  all notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "_build/notebook-times.json"))
