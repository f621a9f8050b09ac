"""Every backend's outputs are bit-for-bit those of a known-good build (fingerprints in tests/data).

The fingerprints were recorded with ``tests/parity/golden_outputs.py``; a kernel change that alters
any output bit (rounding, tap order, fused arithmetic) fails here with the list of cases.
"""

import json
from pathlib import Path

import pytest

from golden_outputs import fingerprints

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_outputs.json"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_outputs_match_recorded_fingerprints(backend):
    expected = {k: v for k, v in json.loads(GOLDEN.read_text()).items() if k.startswith(backend + "/")}
    assert len(expected) > 1000
    got = fingerprints([backend])
    assert got.keys() == expected.keys()
    changed = sorted(k for k in expected if got[k] != expected[k])
    assert not changed, f"{len(changed)} outputs changed, e.g. {changed[:5]}"
