import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def random_image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return rng.random(shape).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
