"""DiLoCo and Streaming DiLoCo on real processes, their byte accounting and their utilisation model.

The math and the wire are in separate modules:

- :mod:`~companion.diloco.schedule` -- which fragment launches / is applied after which inner step;
- :mod:`~companion.diloco.fragments` -- strided or sequential groups of layers, flat private copies;
- :mod:`~companion.diloco.algorithm` -- :class:`StreamingDiLoCo`, hooks on the inner optimiser;
- :mod:`~companion.diloco.reducers` -- summing outer gradients over workers (fp32 or 4-bit);
- :mod:`~companion.diloco.ledger` -- bytes per worker and per sync, peak and total;
- :mod:`~companion.diloco.spec`, :mod:`~companion.diloco.runner` -- a run on real worker processes;
- :mod:`~companion.diloco.reference` -- the same run simulated in one process, for the tests;
- :mod:`~companion.diloco.utilization` -- the closed-form compute-utilisation model (Table 4);
- :mod:`~companion.diloco.layer_sim` -- a per-layer event simulation of the same (the 99 % column);
- :mod:`~companion.diloco.paper` -- the papers' numbers we check against;
- :mod:`~companion.diloco.experiments`, :mod:`~companion.diloco.plots` -- the chapter's runs and figures.
"""

from companion.diloco.algorithm import StreamingDiLoCo
from companion.diloco.fragments import Fragment, layer_assignment, make_fragments
from companion.diloco.layer_sim import simulate_utilization, simulated_required_bandwidth_gbps
from companion.diloco.ledger import ByteLedger, SyncRecord
from companion.diloco.reducers import LinkReducer, LocalReducer
from companion.diloco.runner import RunResult, run, run_many
from companion.diloco.schedule import FragmentSchedule
from companion.diloco.spec import RunSpec
from companion.diloco.utilization import METHODS, required_bandwidth_gbps, sync_pattern, utilization

__all__ = [
    "ByteLedger", "Fragment", "FragmentSchedule", "LinkReducer", "LocalReducer", "METHODS", "RunResult", "RunSpec",
    "StreamingDiLoCo", "SyncRecord", "layer_assignment", "make_fragments", "required_bandwidth_gbps", "run",
    "run_many", "simulate_utilization", "simulated_required_bandwidth_gbps", "sync_pattern", "utilization",
]
