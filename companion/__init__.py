"""Companion package of *Overlap*, an executable textbook.

Each chapter of the book has a subpackage or module here (``companion.calibration``,
``companion.seld``, ``companion.comm``, ...). Shared machinery lives in small modules:

- :mod:`companion.seeding` -- one call to seed Python, NumPy and PyTorch;
- :mod:`companion.scale` -- the ``COMPANION_SCALE`` switch between laptop and paper scale;
- :mod:`companion.plotting` -- the book's plot style and colours;
- :mod:`companion.timing` -- a wall-clock stopwatch.

Subpackages are not imported here, so ``import companion`` stays cheap.
"""

__version__ = "0.1.0"
