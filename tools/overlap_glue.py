"""Sphinx extension of the book: read ``{eval}`glued("key:fmt")``` as myst-nb's glue role.

The prose names every computed number as ``{eval}`glued("key:fmt")``` (see
:mod:`companion.glue`), so JupyterLab (jupyterlab-myst) evaluates it in the kernel. The book is
built from cached executions with no kernel at render time, so myst-nb's own ``eval`` role could
not run it; this extension replaces that role with one that accepts exactly this call and pastes
the value glued in the executed notebook, as ``{glue:text}`key:fmt``` would. Any other ``{eval}``
expression is a build warning (the strict build fails), naming the text and the accepted form.
"""

from __future__ import annotations

from myst_nb.ext.glue.roles import PasteTextRole

from companion.glue import GLUED_CALL


class GluedRole(PasteTextRole):
    """``{eval}`glued("key:fmt")``` pasted from the notebook's glue data (no kernel needed)."""

    def __call__(self, name, rawtext, text, lineno, inliner, options=None, content=()):
        match = GLUED_CALL.match(text)
        if match is None:
            message = (f'{{eval}}`{text}`: the book resolves only {{eval}}`glued("key:fmt")` '
                       "(companion.glue.glued); glue the value in a code cell and name it so")
            error = inliner.reporter.warning(message, line=lineno)
            return [], [error]
        return super().__call__(name, rawtext, match.group("spec"), lineno, inliner, options, content)


def setup(app):
    app.setup_extension("myst_nb")  # so our role replaces myst-nb's, not the other way round
    app.add_role("eval", GluedRole(), override=True)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
