"""Remove widget state (``metadata.widgets``), outputs and the values jupyterlab-myst stores for
``{eval}`` roles (``user_expressions`` in Markdown cells) from notebooks, in place."""

from __future__ import annotations

import json
import sys


def strip(path: str) -> bool:
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    changed = nb.get("metadata", {}).pop("widgets", None) is not None
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            if cell.get("outputs") or cell.get("execution_count") is not None:
                changed = True
            cell["outputs"] = []
            cell["execution_count"] = None
        elif cell.get("metadata", {}).pop("user_expressions", None) is not None:
            changed = True
    if changed:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(nb, f, indent=1, ensure_ascii=False)
            f.write("\n")
    return changed


if __name__ == "__main__":
    for p in sys.argv[1:]:
        if strip(p):
            print(f"stripped {p}")
