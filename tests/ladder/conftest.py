"""One intra-op thread for the ladder tests: the models are tiny, and on a busy 2-core machine
PyTorch's default thread pool makes them many times slower, not faster."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
