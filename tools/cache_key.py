"""Clear the book's execution cache when the ``companion`` package changed.

jupyter-cache keys a notebook on its cells' sources only, so after an edit of ``companion`` the
book would show results computed by the old code. Before each build the Makefile runs

    python tools/cache_key.py _build/.jupyter_cache companion _build/.doctrees

which hashes every ``*.py`` file of the package (path and content), compares the hash with the
one stored beside the cache, and removes the cache when they differ, so every notebook executes
again. It removes Sphinx's saved environment (``_build/.doctrees``) too: Sphinx re-reads only
the sources that changed, so without that a notebook whose cells did not change would be
neither read nor executed, and would keep the old package's results. Any edit of the package re-executes all notebooks: simpler than tracing each notebook's
imports, and a notebook reaches most of the package through ``companion.comm`` and friends anyway.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path


def package_hash(package_dir: Path) -> str:
    """SHA-256 over the relative path and bytes of every ``*.py`` file under ``package_dir``."""
    package_dir = Path(package_dir)
    if not package_dir.is_dir():
        raise FileNotFoundError(f"package directory {package_dir} does not exist")
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def stamp_path(cache_dir: Path) -> Path:
    cache_dir = Path(cache_dir)
    return cache_dir.with_name(cache_dir.name + ".companion-sha256")


def refresh(cache_dir: Path, package_dir: Path, also=()) -> bool:
    """Remove ``cache_dir`` (and each directory in ``also``) if the package changed since the stamp.

    Returns True when the cache was cleared (or there was no stamp yet), False when it is current.
    """
    cache_dir, stamp = Path(cache_dir), stamp_path(cache_dir)
    current = package_hash(package_dir)
    previous = stamp.read_text().strip() if stamp.is_file() else None
    if previous == current:
        return False
    for directory in (cache_dir, *map(Path, also)):
        if directory.exists():
            shutil.rmtree(directory)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(current + "\n")
    return True


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python tools/cache_key.py CACHE_DIR PACKAGE_DIR [ALSO_CLEARED_DIR ...]",
              file=sys.stderr)
        return 2
    cache_dir, package_dir, *also = map(Path, argv)
    if refresh(cache_dir, package_dir, also):
        print(f"cache_key: {package_dir}/ changed (or first build): cleared {cache_dir}, "
              "every notebook executes again")
    else:
        print(f"cache_key: {package_dir}/ unchanged: {cache_dir} reused")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
