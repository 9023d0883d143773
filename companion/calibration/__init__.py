"""Calibration under class overlap (chapter "When classes overlap"; Chidambaram & Ge, ICLR 2024).

Modules, one job each:

- :mod:`~companion.calibration.metrics` -- ECE, ACE, adaptive ECE, MCE, class-wise ECE, NLL
  (from probabilities or logits), Brier, expected KL from a known posterior;
- :mod:`~companion.calibration.reliability` -- reliability-diagram data and plot;
- :mod:`~companion.calibration.temperature` -- temperature scaling (fitted to convergence, the
  common LBFGS recipe, and the oracle);
- :mod:`~companion.calibration.training` -- an MLP trained by ERM to interpolation or by Mixup;
- :mod:`~companion.calibration.mixup` -- mixing batches and the Mixup-optimal predictor;
- :mod:`~companion.calibration.noise` -- pair-flip and symmetric label noise;
- :mod:`~companion.calibration.theory` -- closed forms for the warm-up proposition;
- :mod:`~companion.calibration.regularity` -- the regular-interpolator bound and how to
  measure a network's regularity;
- :mod:`~companion.calibration.experiments` -- the reproductions, one command each.
"""

from companion.calibration.metrics import (ace, adaptive_ece, brier, classwise_ece, ece,
                                           expected_kl, mce, nll, nll_from_logits)
from companion.calibration.reliability import (ReliabilityDiagram, plot_reliability_diagram,
                                               prepare_reliability_diagram)
from companion.calibration.temperature import (OracleTemperatureScaler, TemperatureScaler,
                                               lbfgs_recipe_temperature)

__all__ = ["ece", "ace", "nll_from_logits", "adaptive_ece", "mce", "classwise_ece", "nll", "brier", "expected_kl",
           "ReliabilityDiagram", "prepare_reliability_diagram", "plot_reliability_diagram",
           "TemperatureScaler", "OracleTemperatureScaler", "lbfgs_recipe_temperature"]
