"""JIT flags, defined once. Importing this module imports numba; nothing else at package import does."""

from __future__ import annotations

import os

# Spinning OpenMP workers slow kernels badly on small, busy machines; let idle workers sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

import numba  # noqa: E402

from . import _runtime  # noqa: E402
from .sampling import _kernel_cache  # noqa: E402

if _runtime.cli_process:
    # The stntool command runs no third-party numba extensions; skip numba's scan of every installed
    # package's entry points (tens of milliseconds of start-up). Library users keep the default.
    import numba.core.entrypoints  # noqa: E402

    numba.core.entrypoints._already_initialized = True

_FLAGS = dict(nogil=True, fastmath=False, error_model="numpy")


def _cached(decorator):
    """``decorator`` plus an on-disk cache keyed on the kernel's file and the shared kernel sources
    (:mod:`stntool.sampling._kernel_cache`), so an edit of the scalar maths recompiles the kernel."""

    def wrap(fn):
        dispatcher = decorator(fn)
        dispatcher._cache = _kernel_cache.cpu_cache(fn)
        return dispatcher

    return wrap


#: Parallel entry kernels: prange over output rows, compiled once and cached on disk.
jit_parallel = _cached(numba.njit(parallel=True, **_FLAGS))
#: Serial entry kernels: one per kernel family and mode, over a range of rows (a thread pool runs
#: blocks of rows in parallel; the GIL is released), and deterministic reductions.
jit_serial = _cached(numba.njit(**_FLAGS))
#: Helpers called only from kernels: no Python or C wrapper is built for them (callable from compiled
#: code only), cached on disk so a later kernel reuses them; LLVM inlines them into their callers.
jit_device = _cached(numba.njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, **_FLAGS))
#: Small hot helpers, inlined at the Numba IR level so the per-pixel loop has no calls.
jit_inline = _cached(numba.njit(inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True, **_FLAGS))
#: Options of ``numba.extending.overload`` implementations (compile-time choice of a path by a
#: constant mode or by dtype; compiled into, and cached with, the kernel that calls them).
OVERLOAD_OPTIONS = dict(_FLAGS, no_cpython_wrapper=True, no_cfunc_wrapper=True)
#: The shared scalar maths (:mod:`stntool.sampling._scalar`) as CPU helpers: not cached on their
#: own (they are compiled into the kernels that call them, whose cache covers their source).
jit_scalar = numba.njit(**_FLAGS)
#: Small scalar helpers, inlined at the Numba IR level.
jit_scalar_inline = numba.njit(inline="always", **_FLAGS)

prange = numba.prange
