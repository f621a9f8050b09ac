"""CUDA kernel tests. They run under numba-cuda's simulator unless a real GPU is in use.

``NUMBA_ENABLE_CUDASIM`` is read when numba is first imported, so it is set here, before any
numba import. Run this directory on its own::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -q

If numba was already imported without the simulator (e.g. the whole suite in one process on a
machine without a GPU), or numba-cuda is not installed, the directory is skipped.
"""

import os
import sys

os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import pytest  # noqa: E402

collect_ignore_glob = []
_skip_reason = None
try:
    import numba_cuda  # noqa: F401
    from numba import cuda  # noqa: F401
except ImportError:
    _skip_reason = "numba-cuda is not installed"
else:
    from stntool.sampling import _cuda

    if not _cuda.is_available():
        _skip_reason = ("no GPU and the simulator is off (numba was imported before this conftest); "
                        "run NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda")

if _skip_reason is not None:
    collect_ignore_glob = ["test_*.py"]
    sys.stderr.write(f"tests/cuda skipped: {_skip_reason}\n")

# gpu_check.py is a standalone script for a real GPU, not a test module
collect_ignore = ["gpu_check.py"]


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Tiny blocks, so that the tiny test inputs span several blocks, and no padding with idle blocks."""
    from stntool.sampling import _cuda

    monkeypatch.setattr(_cuda, "THREADS_PER_BLOCK", 4)
    monkeypatch.setattr(_cuda, "MIN_BLOCKS", 1)
    yield


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(20240607)
