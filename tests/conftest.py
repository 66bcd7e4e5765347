import os

import numpy as np
import pytest

# Keep the test suite to the two cores of the CI machine and off any GPU.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def rng():
    """A seeded generator: tests never touch the global numpy seed."""
    return np.random.default_rng(0)
