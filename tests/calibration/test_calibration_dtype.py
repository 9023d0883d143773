"""MLPClassifier in float64: the digits experiment recomputes exactly on another CPU."""

import torch


def test_float64_training_is_float64_and_refuses_other_dtypes():
    import numpy as np
    import pytest

    from companion.calibration.training import MLPClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    model = MLPClassifier(2, hidden=(8,), epochs=3, batch_size=40, dtype="float64").fit(x, y)
    assert next(model.model_.parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="dtype must be 'float32' or 'float64', got 'half'"):
        MLPClassifier(2, hidden=(8,), epochs=3, dtype="half").fit(x, y)
