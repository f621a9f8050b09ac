"""Every backend's outputs are bit-for-bit those of a known-good build (fingerprints in tests/data).

The fingerprints were recorded with ``tests/parity/golden_outputs.py``; a kernel change that alters
any output bit (rounding, tap order, fused arithmetic) fails here with the list of cases. The NumPy
reference's thin-plate splines do not travel between machines (``golden_outputs.CPU_DEPENDENT``) and
are compared with the CPU kernels' outputs within a tolerance instead.
"""

import json
from pathlib import Path

import pytest

from golden_outputs import CPU_DEPENDENT, assert_close_to_kernels, cases, fingerprints

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_outputs.json"


def _portable(key: str) -> bool:
    backend, case = key.split("/", 1)
    return not (backend == "numpy" and case.startswith(CPU_DEPENDENT))


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
        if key.startswith(CPU_DEPENDENT):
            assert_close_to_kernels(key, thunk("numpy"), thunk("cpu"))
            checked += 1
    assert checked == 288
