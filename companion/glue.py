"""Numbers computed in a notebook, read in its prose: in the built book and in JupyterLab alike.

The book's prose never types a number; it names one the code computed. A code cell calls
:func:`glue` (myst-nb's ``glue``, which also remembers the value), and the Markdown says::

    the gain is {eval}`glued("ladder-gain:.2f")`

Two readers resolve that one source:

- **JupyterLab** with ``jupyterlab-myst`` sends ``glued("ladder-gain:.2f")`` to the kernel
  when the Markdown cell runs, and shows the text it returns.
- **The built book**: the book's Sphinx extension (``tools/overlap_static.py``) reads the same
  role as myst-nb's ``{glue:text}`ladder-gain:.2f``` and pastes the value glued in the executed
  notebook, without a kernel.

Both format the value the same way (:func:`glued` calls myst-nb's own formatter on the
``text/plain`` that myst-nb would store), so Lab and the HTML show the same digits.
"""

from __future__ import annotations

import re
from typing import Any

import IPython.core.formatters
from myst_nb import glue as _myst_nb_glue
from myst_nb.core.variables import format_plain_text

#: The values glued in this kernel, by key.
_GLUED: dict[str, Any] = {}

#: ``glued("key")`` or ``glued("key:format")``, as the prose spells it (either quote).
GLUED_CALL = re.compile(r"""^\s*glued\(\s*(?P<q>["'])(?P<spec>[^"']+)(?P=q)\s*\)\s*$""")


class GluedText(str):
    """Formatted text whose ``repr`` is itself, so a kernel shows it without quotes."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))


def glue(name: str, value: Any, display: bool = True) -> None:
    """Glue ``value`` under ``name`` for the book (myst-nb) and remember it for :func:`glued`."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a glue name must be a non-empty string without ':', got {name!r}")
    _GLUED[name] = value
    _myst_nb_glue(name, value, display=display)


def split_spec(spec: str) -> tuple[str, str]:
    """``"key:.3f"`` -> ``("key", ".3f")``; ``"key"`` -> ``("key", "")`` (the glue role's grammar)."""
    key, sep, fmt = spec.rpartition(":")
    return (key, fmt) if sep else (spec, "")


def glued(spec: str) -> GluedText:
    """The text the book shows for ``{glue:text}`spec``` : the glued value, formatted.

    ``spec`` is ``"key"`` or ``"key:format_spec"`` (a Python format spec ending in its type
    character, e.g. ``.3f``, ``.1%``, ``d``). Raises :class:`KeyError` naming the key when
    nothing was glued under it in this kernel (run the cell that computes it first).
    """
    key, fmt = split_spec(spec)
    if key not in _GLUED:
        raise KeyError(f"nothing is glued under {key!r} yet: run the code cell that glues it "
                       f"(glue({key!r}, ...)) before this Markdown cell")
    bundle, _ = IPython.core.formatters.format_display_data(_GLUED[key])
    return GluedText(format_plain_text(bundle["text/plain"], fmt))
