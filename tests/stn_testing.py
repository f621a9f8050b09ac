"""Shared test helpers (importable because tests/conftest.py puts tests/ on sys.path)."""

import numpy as np

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def random_image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return rng.random(shape).astype(dtype)
