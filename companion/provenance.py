"""Where a result came from: the command, the commit, the machine and the time (shared by every chapter)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path


def git_commit(cwd: Path | None = None) -> str:
    """``HEAD``'s hash, with ``+dirty`` when tracked files differ from it; a sentence outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+dirty" if dirty else "")


def device_description() -> str:
    """CPU (and GPU, when torch sees one) of this machine, in words."""
    import torch

    words = f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} cores"
    if torch.cuda.is_available():
        words += f", {torch.cuda.get_device_name(0)}"
    return f"{platform.node()}: {words}; python {platform.python_version()}, torch {torch.__version__}"


def provenance(command: str | None = None) -> dict:
    """A dict to store beside a result: ``command``, ``git_commit``, ``device``, ``date_utc``, ``load_average``."""
    return {"command": command if command is not None else " ".join([Path(sys.executable).name, *sys.argv]),
            "git_commit": git_commit(), "device": device_description(),
            "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "load_average": list(os.getloadavg())}


def write_result(path: Path, result: dict, command: str) -> Path:
    """Write ``result`` with its ``provenance(command)`` to ``path`` as indented JSON; returns ``path``.

    The one way the package's sweeps store a heavy result for a notebook to show. ``result`` must
    not already hold a ``"provenance"`` key (it would be overwritten silently otherwise).
    """
    import json

    if "provenance" in result:
        raise ValueError("result already has a 'provenance' entry; pass the bare result")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**result, "provenance": provenance(command)}, indent=1) + "\n")
    return path
