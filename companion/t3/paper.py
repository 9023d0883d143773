"""What the T3 paper reports (Pati et al., ASPLOS 2024), each number with its source's status.

Two kinds of source, as in the book's research notes (``t3-ladder-residual.md`` and
``verified-from-full-texts.md`` §4):

- **primary**: read in the paper itself. Only its abstract was readable here, so only the
  abstract's numbers are primary;
- **secondary**: from a deep-read of the full text written by someone else (section numbers
  as that reading gives them), corroborated in part by a second, independent note. No primary
  full text was found, so treat these as approximate.

Every value is a fraction (0.30 for 30 %) or a ratio (2.4 for "2.4x lower"), as its key says.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRIMARY", "SECONDARY", "OUR_CHOICE", "Reported", "PAPER", "paper_value", "status_of"]

PRIMARY = "primary"
SECONDARY = "secondary"
#: For the book's own choices (shapes, tokens, constants), printed beside the paper's.
OUR_CHOICE = "our choice"


@dataclass(frozen=True)
class Reported:
    """One number the paper reports.

    Attributes
    ----------
    value : float
        The number: a fraction for speedups and savings, a ratio for "x lower".
    status : str
        :data:`PRIMARY` or :data:`SECONDARY`.
    where : str
        Where it is (the abstract, or the section a secondary reading cites).
    what : str
        What it measures, on which models.
    """

    value: float
    status: str
    where: str
    what: str

    def __post_init__(self) -> None:
        if self.status not in (PRIMARY, SECONDARY):
            raise ValueError(f"status must be {PRIMARY!r} or {SECONDARY!r}, got {self.status!r}")


_MAIN = "Mega-GPT-2 and T-NLG sublayers, TP 8 and 16"
_LARGE = "GPT-3, PaLM and MT-NLG sublayers, TP 32"

#: Everything the chapter sets beside its model, by key.
PAPER = {
    # sublayer speedups over sequential (T3 §6.1, §6.4; abstract)
    "t3_mca_geomean": Reported(0.30, PRIMARY, "abstract", f"T3 with memory-controller arbitration (T3-MCA), {_MAIN}"),
    "t3_mca_max": Reported(0.47, PRIMARY, "abstract", f"T3-MCA, {_MAIN}"),
    "t3_geomean": Reported(0.20, SECONDARY, "§6.1", f"T3 without arbitration, {_MAIN}"),
    "t3_max": Reported(0.39, SECONDARY, "§6.1", f"T3 without arbitration, {_MAIN}"),
    "ideal_geomean": Reported(0.35, SECONDARY, "§6.1", f"ideal GEMM / reduce-scatter overlap, {_MAIN}"),
    "ideal_max": Reported(0.50, SECONDARY, "§6.1", f"ideal GEMM / reduce-scatter overlap, {_MAIN}"),
    "large_t3_mca_geomean": Reported(
        0.29, PRIMARY, "abstract", "T3-MCA on ~500B models (the abstract names PaLM and MT-NLG)"
    ),
    "large_t3_mca_max": Reported(0.35, SECONDARY, "§6.4", f"T3-MCA, {_LARGE}"),
    # DRAM data movement (T3 §6.2; abstract)
    "data_movement_geomean": Reported(0.22, PRIMARY, "abstract", "DRAM data movement saved by T3, T-NLG-class sublayers"),
    "data_movement_max": Reported(0.36, PRIMARY, "abstract", "DRAM data movement saved by T3, T-NLG-class sublayers"),
    "rs_read_ratio": Reported(2.4, SECONDARY, "§6.2", "reduce-scatter DRAM reads, baseline / T3, geomean"),
    "rs_read_ratio_tp8": Reported(2.5, SECONDARY, "§6.2", "reduce-scatter DRAM reads, baseline / T3, TP 8"),
    "rs_read_ratio_tp16": Reported(2.2, SECONDARY, "§6.2", "reduce-scatter DRAM reads, baseline / T3, TP 16"),
    "gemm_rs_write_change": Reported(-0.10, SECONDARY, "§6.2", "GEMM + reduce-scatter DRAM writes, T3 vs baseline"),
    "gemm_read_ratio": Reported(1.56, SECONDARY, "§6.2", "GEMM DRAM reads, baseline / T3"),
    # end to end (T3 §6.3, §6.4)
    "e2e_train_max": Reported(0.12, SECONDARY, "§6.3", "T3-MCA, whole training iteration, Mega-GPT-2 and T-NLG"),
    "e2e_train_geomean": Reported(0.10, SECONDARY, "§6.3", "T3-MCA, whole training iteration, Mega-GPT-2 and T-NLG"),
    "e2e_prompt_max": Reported(0.15, SECONDARY, "§6.3", "T3-MCA, prompt-phase inference, Mega-GPT-2 and T-NLG"),
    "e2e_prompt_geomean": Reported(0.12, SECONDARY, "§6.3", "T3-MCA, prompt-phase inference, Mega-GPT-2 and T-NLG"),
    "large_e2e_train_max": Reported(0.12, SECONDARY, "§6.4", f"T3-MCA, whole training iteration, {_LARGE}"),
    "large_e2e_prompt_max": Reported(0.14, SECONDARY, "§6.4", f"T3-MCA, prompt-phase inference, {_LARGE}"),
    # the software overlap of Fig. 6 (T3 §3): the collective on 16 of the 80 CUs
    "fig6_comm_cus": Reported(16, SECONDARY, "Fig. 6", "CUs given to the collective"),
    "fig6_gemm_slowdown": Reported(0.21, SECONDARY, "Fig. 6", "GEMM slowdown on the remaining 64 CUs"),
    "fig6_comm_slowdown": Reported(0.07, SECONDARY, "Fig. 6", "collective slowdown on 16 CUs"),
}


def paper_value(key: str) -> float:
    """The value of :data:`PAPER` ``[key]`` (a fraction or a ratio, as the key's entry says)."""
    return PAPER[key].value


def status_of(key: str) -> str:
    """``"primary"`` or ``"secondary"``, the status of the source of :data:`PAPER` ``[key]``."""
    return PAPER[key].status
