"""The paper-scale hardware: one table of constants, each with its source.

T3 was evaluated in a cycle simulator (an extended Accel-Sim), not on a product, so the
constants below describe the *simulated* GPU and ring network of Pati et al. (ASPLOS 2024),
Section 5.1, as reported by a deep-read of the full text (``verified-from-full-texts.md`` §4
of the book's research notes): a *secondary* source, since only the paper's abstract could be
read here.  Where the paper does not give a number we need (peak matrix
throughput, achieved GEMM efficiency, per-direction link bandwidth), the value is derived or
assumed here and the docstring says which.  Nothing in this module is fitted to the paper's
results.
"""

from __future__ import annotations

from dataclasses import dataclass

from companion.comm import Link

from .paper import OUR_CHOICE, SECONDARY

__all__ = ["GPUModel", "PAPER_GPU", "PAPER_RING", "HARDWARE_SOURCES"]


@dataclass(frozen=True)
class GPUModel:
    """A GPU seen by a roofline: matrix throughput and DRAM bandwidth.

    Attributes
    ----------
    compute_units : int
        Number of compute units (CUs).
    clock_hz : float
        Core clock in Hz.
    flops_per_cu_per_cycle : float
        Dense fp16/bf16 matrix FLOPs one CU retires per cycle.
    gemm_efficiency : float
        Fraction of peak a large GEMM achieves, in (0, 1].
    dram_bytes_per_s : float
        DRAM (HBM) bandwidth in bytes/s.
    bytes_per_element : int
        Bytes of one activation element (2 for fp16/bf16).
    """

    compute_units: int
    clock_hz: float
    flops_per_cu_per_cycle: float
    gemm_efficiency: float
    dram_bytes_per_s: float
    bytes_per_element: int = 2

    def __post_init__(self) -> None:
        for name in ("compute_units", "clock_hz", "flops_per_cu_per_cycle", "dram_bytes_per_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.gemm_efficiency <= 1:
            raise ValueError(f"gemm_efficiency must be in (0, 1], got {self.gemm_efficiency}")
        if self.bytes_per_element not in (1, 2, 4):
            raise ValueError(f"bytes_per_element must be 1, 2 or 4, got {self.bytes_per_element}")

    @property
    def peak_flops(self) -> float:
        """Peak dense matrix throughput in FLOP/s."""
        return self.compute_units * self.clock_hz * self.flops_per_cu_per_cycle

    def gemm_time(self, m: int, k: int, n: int) -> float:
        """Roofline time in seconds of an (m x k) @ (k x n) GEMM.

        The larger of the compute time at ``gemm_efficiency`` of peak and the time to move
        the two inputs and the output through DRAM once each.
        """
        if min(m, k, n) < 1:
            raise ValueError(f"GEMM dims must be >= 1, got m={m}, k={k}, n={n}")
        flops = 2.0 * m * k * n
        nbytes = self.bytes_per_element * (m * k + k * n + m * n)
        return max(flops / (self.peak_flops * self.gemm_efficiency), nbytes / self.dram_bytes_per_s)


#: The simulated GPU of T3 §5.1: 80 CUs at 1.4 GHz with 1 TB/s of HBM2.  The paper does not
#: print a peak FLOP rate; 1024 fp16 matrix FLOPs per CU per cycle is what AMD's CDNA CUs
#: retire (MI100: 184.6 TFLOPS fp16 from 120 CUs at 1.502 GHz), so peak = 114.7 TFLOPS.
#: The 0.75 GEMM efficiency is our assumption for large, compute-bound GEMMs.
PAPER_GPU = GPUModel(
    compute_units=80,
    clock_hz=1.4e9,
    flops_per_cu_per_cycle=1024.0,
    gemm_efficiency=0.75,
    dram_bytes_per_s=1.0e12,
    bytes_per_element=2,
)

#: The simulated network of T3 §5.1: a ring, 150 GB/s bidirectional, 500 ns link latency.
#: We read "bidirectional" as 75 GB/s each way, the direction a single ring uses.
PAPER_RING = Link(latency_s=500e-9, bandwidth_bytes_per_s=75e9)

#: Where every constant above comes from, as (quantity, value, source, status) rows for the book.
#: Status (:mod:`companion.t3.paper`): "secondary" for the paper's §5.1, which we read only in a
#: deep-read of the full text; "derived" and "our choice" for what the paper does not print.
HARDWARE_SOURCES = (
    ("compute units", "80", "T3 §5.1 (simulated GPU)", SECONDARY),
    ("clock", "1.4 GHz", "T3 §5.1", SECONDARY),
    ("HBM bandwidth", "1 TB/s", "T3 §5.1 (HBM2)", SECONDARY),
    ("fp16 matrix FLOPs / CU / cycle", "1024", "AMD MI100: 184.6 TFLOPS / (120 CU x 1.502 GHz)", "derived"),
    ("GEMM efficiency", "0.75 of peak", "-", OUR_CHOICE),
    ("ring bandwidth per direction", "75 GB/s", "T3 §5.1: 150 GB/s bidirectional; halving it is ours", SECONDARY),
    ("link latency", "500 ns", "T3 §5.1", SECONDARY),
    ("element size", "2 bytes", "fp16/bf16 activations", OUR_CHOICE),
)
