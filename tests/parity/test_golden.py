"""Every backend's outputs are bit-for-bit those of a known-good build (fingerprints in tests/data).

The fingerprints were recorded with ``tests/parity/golden_outputs.py``; a kernel change that alters
any output bit (rounding, tap order, fused arithmetic) fails here with the list of cases.

One group of fingerprints does not travel between machines: the NumPy reference evaluates thin-plate
splines with NumPy's vectorised ``log`` and a BLAS matrix product, whose last bits depend on the SIMD
kernels the CPU selects (AVX-512 or AVX2). Those outputs are compared with the CPU backend's, whose own
fingerprints are checked exactly, within a tolerance instead.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from golden_outputs import cases, fingerprints

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_outputs.json"

#: Case keys whose NumPy-backend bits depend on the CPU's SIMD kernels (see the module docstring).
CPU_DEPENDENT_REFERENCE = ("warp_tps/",)


def _portable(key: str) -> bool:
    backend, case = key.split("/", 1)
    return not (backend == "numpy" and case.startswith(CPU_DEPENDENT_REFERENCE))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_outputs_match_recorded_fingerprints(backend):
    expected = {k: v for k, v in json.loads(GOLDEN.read_text()).items() if k.startswith(backend + "/")}
    assert len(expected) > 1000
    got = fingerprints([backend])
    assert got.keys() == expected.keys()
    changed = sorted(k for k in expected if _portable(k) and got[k] != expected[k])
    assert not changed, f"{len(changed)} outputs changed, e.g. {changed[:5]}"


@pytest.mark.slow
def test_reference_splines_match_the_fingerprinted_kernels():
    checked = 0
    for key, thunk in cases():
        if not key.startswith(CPU_DEPENDENT_REFERENCE):
            continue
        ref, got = thunk("numpy"), thunk("cpu")
        assert ref.dtype == got.dtype and ref.shape == got.shape, key
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        mode = key.split("/")[2]
        if mode == "nearest":  # a coordinate a few ulps from a pixel boundary may round the other way
            assert np.mean(diff > 0) <= 0.01, key
        elif ref.dtype.kind == "u":
            assert diff.max() <= 1, key
        else:
            assert diff.max() <= (1e-7 if ref.dtype == np.float64 else 1e-5), key
        checked += 1
    assert checked == 288
