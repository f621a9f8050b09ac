"""What numba loads on a process's first kernel call: scipy and cffi's C parser are deferred (stntool._jit)."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code, tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_a_kernel_call_imports_neither_scipy_nor_the_c_parser(tmp_path):
    code = """
        import sys
        import numpy as np, stntool
        img = np.zeros((8, 8, 3), np.uint8)
        stntool.warp(img, [[1, 0, 0], [0, 1, 0]], backend="cpu")
        print("scipy.linalg" in sys.modules, "pycparser" in sys.modules)
    """
    assert _run(code, tmp_path) == ["False", "False"]   # compiled
    assert _run(code, tmp_path) == ["False", "False"]   # loaded from the cache


def test_numba_sees_blas_and_cffi_as_before(tmp_path):
    code = """
        import stntool._jit
        from numba.np import arraymath, linalg
        from numba.core.typing import cffi_utils
        print(arraymath._HAVE_BLAS, arraymath.ensure_blas is linalg.ensure_blas, cffi_utils.SUPPORTED)
        if cffi_utils.SUPPORTED:
            import cffi
            assert cffi_utils.ffi.typeof("int") == cffi.FFI().typeof("int")   # created on first use
            ffi = cffi.FFI()
            ffi.cdef("int abs(int);")
            assert cffi_utils.is_cffi_func(ffi.dlopen(None).abs)
    """
    scipy = importlib.util.find_spec("scipy") is not None
    cffi = importlib.util.find_spec("cffi") is not None
    assert _run(code, tmp_path) == [str(scipy), "True", str(cffi)]
