"""JIT flags, defined once. Importing this module imports numba; nothing else at package import does."""

from __future__ import annotations

import os

# Spinning OpenMP workers slow kernels badly on small, busy machines; let idle workers sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

import numba  # noqa: E402

from . import _runtime  # noqa: E402

if _runtime.cli_process:
    # The stntool command runs no third-party numba extensions; skip numba's scan of every installed
    # package's entry points (tens of milliseconds of start-up). Library users keep the default.
    import numba.core.entrypoints  # noqa: E402

    numba.core.entrypoints._already_initialized = True

#: Parallel entry kernels: prange over output rows, compiled once and cached on disk.
jit_parallel = numba.njit(parallel=True, cache=True, nogil=True, fastmath=False, error_model="numpy")
#: Serial entry kernels (reductions that must be deterministic, small set-up work).
jit_serial = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: Helpers called from kernels; inlined by LLVM.
jit_device = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
#: Small hot helpers, inlined at the Numba IR level so the per-pixel loop has no calls.
jit_inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")

prange = numba.prange
