"""Availability probing, lazy import, and the numpy >= 2.5 ``np.row_stack`` workaround."""

import os
import subprocess
import sys

import numpy as np

from stntool.sampling import _cuda


def _run(code):
    env = dict(os.environ)
    env["NUMBA_ENABLE_CUDASIM"] = "0"  # the real CUDA target's typing modules, no GPU needed
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_simulator_counts_as_available():
    assert _cuda.is_available()
    assert _cuda.unavailable_reason() is None


def test_row_stack_alias(monkeypatch):
    monkeypatch.delitem(np.__dict__, "row_stack", raising=False)
    assert _cuda._ensure_numpy_compat() is True
    assert np.array_equal(np.row_stack(([1, 2], [3, 4])), np.vstack(([1, 2], [3, 4])))
    assert _cuda._ensure_numpy_compat() is False  # present now: left alone


def test_numpy_without_row_stack_loads_numba_cuda_array_typing():
    """Simulate numpy 2.5: numba-cuda's array typing module (loaded at the first kernel compile)
    fails without np.row_stack, and loads once stntool's CUDA module has been imported."""
    broken = _run("import numpy as np; np.__dict__.pop('row_stack', None); import numba.cuda.np.arrayobj")
    assert broken.returncode != 0 and "row_stack" in broken.stderr
    fixed = _run("import numpy as np; np.__dict__.pop('row_stack', None); import stntool.sampling._cuda; "
                 "import numba.cuda.np.arrayobj; print('ok')")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.stdout.strip() == "ok"


def test_importing_stntool_does_not_touch_cuda():
    res = _run("import sys, stntool; print(any(m.startswith(('numba', 'stntool.sampling._cuda')) for m in sys.modules))")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False"
