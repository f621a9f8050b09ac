"""Under the simulator the CUDA kernels' outputs are bit-for-bit those of a known-good build.

The simulator runs the kernels' Python with float64 arithmetic and no fused multiply-adds, so
the fingerprints (``tests/data/golden_outputs.json``, recorded by ``tests/parity/golden_outputs.py
--backends cuda``) are exact there; a real GPU may contract operations and is compared with
tolerances by the other tests. A subset of the cases keeps the simulator's run short. Thin-plate
splines computed with NumPy do not travel between machines (``golden_outputs.CPU_DEPENDENT``): under
the simulator they are compared with the CPU kernels' outputs within a tolerance instead.
"""

import json
import sys
from pathlib import Path

import pytest

from stntool.sampling import _cuda

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))
from golden_outputs import CPU_DEPENDENT, assert_close_to_kernels, cases, fingerprints  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden_outputs.json"

pytestmark = pytest.mark.skipif(not _cuda._simulator_enabled(), reason="exact only under the simulator")


@pytest.mark.slow
@pytest.mark.parametrize("subset", ["/c3/ac0", "/c1/ac1"])
def test_simulated_outputs_match_recorded_fingerprints(subset):
    expected = json.loads(GOLDEN.read_text())
    keys = [k for k, _ in cases() if k.endswith(subset)]
    exact = [k for k in keys if not k.startswith(CPU_DEPENDENT)]
    assert len(exact) > 50
    got = fingerprints(["cuda"], only=set(exact))
    changed = sorted(k for k in got if got[k] != expected[k])
    assert len(got) == len(exact) and not changed, f"{len(changed)} outputs changed, e.g. {changed[:5]}"
    splines = 0
    for key, thunk in cases():
        if key.endswith(subset) and key.startswith(CPU_DEPENDENT):
            assert_close_to_kernels(key, thunk("cuda"), thunk("cpu"))
            splines += 1
    assert splines == 48
