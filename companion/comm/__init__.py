"""``companion.comm``: multi-process collectives on one machine, a modelled slow link, timelines.

- :func:`launch` runs a worker function on several processes with ``torch.distributed`` set up;
  :func:`run_under_torchrun` runs the same function under ``torchrun``; :func:`strict_placement`
  (``launch(..., strict_device=True)``) catches tensors that would not be on a rank's GPU.
- :class:`Link` is the alpha-beta cost model of ring collectives.
- :class:`Schedule` (:mod:`~companion.comm.events`) is the book's one event model of overlapped
  schedules: every chapter that simulates compute beside communication plays it out there.
- :class:`ModelledLink` runs real collectives and completes them at the modelled time.
- :class:`ShapedLink` makes the network really slow: :func:`launch` runs the ranks in network
  namespaces whose NICs the kernel throttles (``tc ... tbf``); :mod:`.link_fit` measures alpha, beta.
- :class:`Timeline`, :func:`summarize` and :func:`plot_gantt` record and judge overlap.
- :func:`ring_reduce_scatter`, :func:`ring_all_gather`: collectives written with ``isend``/``irecv``.
- :func:`quantize`, :func:`dequantize`, :func:`quantized_all_reduce`: low-bit payloads.
"""

from .cost_model import (BYTES_PER_S_PER_GBPS, DATA_PARALLEL_HIDDEN_FRACTION, Link, bandwidth_for_utilization,
                         broadcast_sends, compute_utilization, critical_bandwidth, data_parallel_utilization,
                         overlap_bounds)
from .events import LAST, Run, Schedule
from .launcher import WorkerError, device, launch, run_under_torchrun
from .modelled_link import ModelledLink, Transfer
from .placement import DevicePlacementError, check_on_device, strict_placement
from .shaped_link import ShapedLink, ShapedNetwork, reshape_own_link
from .plots import plot_gantt
from .quantize import QuantizedTensor, dequantize, quantize, quantized_all_reduce
from .ring import ring_all_gather, ring_reduce_scatter
from .timeline import Span, Timeline, summarize

__all__ = [
    "BYTES_PER_S_PER_GBPS", "DATA_PARALLEL_HIDDEN_FRACTION", "DevicePlacementError", "LAST", "Link", "Run", "Schedule",
    "bandwidth_for_utilization", "compute_utilization", "ModelledLink", "QuantizedTensor", "ShapedLink",
    "ShapedNetwork", "Span", "Timeline", "Transfer", "WorkerError", "broadcast_sends", "check_on_device", "critical_bandwidth",
    "data_parallel_utilization", "dequantize", "device", "launch", "overlap_bounds",
    "plot_gantt", "quantize", "quantized_all_reduce", "reshape_own_link", "ring_all_gather", "ring_reduce_scatter",
    "run_under_torchrun", "strict_placement", "summarize",
]
