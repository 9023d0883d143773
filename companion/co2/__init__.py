"""CO2 (Sun et al., ICLR 2024): local updating with a one-step-stale, fully overlapped all-reduce.

Modules, one job each:

- :mod:`companion.co2.outer` -- the outer update (momentum, staleness-gap penalty, clipping);
- :mod:`companion.co2.stability` -- the outer iteration on a quadratic, stale versus synchronous;
- :mod:`companion.co2.overlap` -- the full-overlap condition, predicted utilisation, and the
  rounds played out in the book's one event model (``companion.comm.Schedule``);
- :mod:`companion.co2.paper` -- the paper's numbers, and the condition's prediction of its 128-GPU run;
- :mod:`companion.co2.schedule` -- which method a worker runs (data-parallel, sync local SGD, CO2);
- :mod:`companion.co2.sync` -- gradient averaging and the outer state (:class:`OuterSync`);
- :mod:`companion.co2.worker` -- the one worker loop and the function ``comm.launch`` runs;
- :mod:`companion.co2.experiments` -- the throughput sweep and the convergence runs;
- :mod:`companion.co2.bookkeeping` -- small traces for the book (anchors round by round);
- :mod:`companion.co2.plots` -- the chapter's figures.

``overlap`` and ``paper`` use ``companion.comm``'s cost and event models; ``worker`` and
``experiments`` also import ``companion.lm`` and run processes; import those two explicitly (``from companion.co2 import experiments``).
"""

from .outer import (OuterConfig, clip_outer_momentum_, momentum_update_, outer_step_,
                    pseudo_gradient, reference_code_clip)
from .overlap import (allreduce_seconds, full_overlap, min_local_steps,
                      predicted_utilization, simulate_rounds, simulated_utilization)
from .paper import PAPER_SCALABILITY, predict_paper_scalability
from .stability import contraction_factor, local_progress, outer_iteration_matrix

__all__ = [
    "OuterConfig", "clip_outer_momentum_", "momentum_update_", "outer_step_", "pseudo_gradient",
    "reference_code_clip", "allreduce_seconds", "full_overlap", "min_local_steps",
    "predicted_utilization", "simulate_rounds", "simulated_utilization", "PAPER_SCALABILITY", "predict_paper_scalability",
    "contraction_factor", "local_progress", "outer_iteration_matrix",
]
