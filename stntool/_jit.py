"""JIT flags, defined once. Importing this module imports numba; nothing else at package import does."""

from __future__ import annotations

import os

# Spinning OpenMP workers slow kernels badly on small, busy machines; let idle workers sleep.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("KMP_BLOCKTIME", "0")

import numba  # noqa: E402

from . import _malloc, _runtime  # noqa: E402
from .sampling import _kernel_cache, _link_only  # noqa: E402

_link_only.install()
_malloc.prime()  # image-sized buffers stay in the heap between uses (see stntool._malloc)


class _LazyFFI:
    """Stands in for numba's ``cffi.FFI()`` instance until something uses it (see below)."""

    def __init__(self, make):
        self._make = make
        self._ffi = None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if self._ffi is None:
            self._ffi = self._make()
        return getattr(self._ffi, name)

    def typeof(self, cdecl):
        # numba asks this of every global a kernel uses ("is it a cffi function?"): answer for objects
        # that cannot be cffi's as FFI.typeof does (TypeError), without building the parser
        if self._ffi is None and not _maybe_cffi(cdecl):
            raise TypeError(type(cdecl))
        return self.__getattr__("typeof")(cdecl)


def _maybe_cffi(obj) -> bool:
    """False for objects ``cffi.FFI().typeof`` rejects: all but C declarations, cffi data, functions of
    cffi modules."""
    import sys
    import types

    if isinstance(obj, str) or type(obj).__module__ == "_cffi_backend":
        return True
    if isinstance(obj, types.BuiltinFunctionType):
        return hasattr(sys.modules.get(getattr(obj, "__module__", None) or ""), "_cffi_original_ffi")
    return isinstance(obj, types.FunctionType) and hasattr(obj, "_cffi_base_type")


def _defer_unused_imports():
    """The first compile or cache load in a process makes numba load its typing registries, which
    import scipy (only to see whether BLAS is there) and build cffi's C parser: about 0.2 s where
    both are installed, for features no stntool kernel uses. Both are deferred to their first use:
    BLAS availability is read from whether scipy is installed (numba imports it when a kernel needs
    it), and numba's ``FFI`` instance is created when something asks for it. numba behaves as before."""
    import importlib.util
    import sys

    if "numba.np.arraymath" not in sys.modules:
        from numba.np import linalg

        ensure_blas = linalg.ensure_blas

        def scipy_installed():
            if importlib.util.find_spec("scipy") is None:
                raise ImportError("scipy 0.16+ is required for linear algebra")

        linalg.ensure_blas = scipy_installed
        try:
            import numba.np.arraymath as arraymath
        finally:
            linalg.ensure_blas = ensure_blas
        if getattr(arraymath, "ensure_blas", None) is scipy_installed:
            arraymath.ensure_blas = ensure_blas
    if "numba.core.typing.cffi_utils" not in sys.modules and importlib.util.find_spec("cffi") is not None:
        import cffi

        make = cffi.FFI
        cffi.FFI = lambda: _LazyFFI(make)
        try:
            import numba.core.typing.cffi_utils  # noqa: F401
        finally:
            cffi.FFI = make


def _scalar_operators_skip_ufunc_search():
    """numba types each ``+``, ``<``, ``&``, ... of a kernel by asking every template of the operator in turn.
    The template for NumPy arrays (``NumpyRulesArrayOperator``) searches the matching ufunc's loops for
    the operand types first and only then checks whether an operand is an array, answering nothing
    when none is: for the scalar operands of nearly every operator in a kernel, a search whose result is
    thrown away (about 3,300 of them in a first thin-plate-spline call). Here that template answers
    nothing at once when no operand is an array: the answer it gave, so typing and kernels are the same."""
    from numba.core import types as nb_types
    from numba.core.typing import npydecl

    template = npydecl.NumpyRulesArrayOperator
    generic = template.generic
    if getattr(generic, "_scalars_skip", False):
        return

    def arrays_only(self, args, kws):
        # the template types an Optional operand as its value's type: an Optional array is an array
        if not any(isinstance(a.type if isinstance(a, nb_types.Optional) else a, nb_types.ArrayCompatible)
                   for a in args):
            return None
        return generic(self, args, kws)

    # numba describes a template by its method (errors list it): the original's name and docstring, this
    # file's lines (no __wrapped__: inspect would mix this file's name with the original's lines)
    arrays_only.__name__, arrays_only.__qualname__ = generic.__name__, generic.__qualname__
    arrays_only.__doc__ = generic.__doc__
    arrays_only._scalars_skip = True
    arrays_only.original = generic
    template.generic = arrays_only


for _patch in (_defer_unused_imports, _scalar_operators_skip_ufunc_search):
    try:
        _patch()
    except Exception:  # noqa: BLE001 - numba internals moved: keep numba's own behaviour
        pass

if _runtime.cli_process:
    # The stntool command runs no third-party numba extensions; skip numba's scan of every installed
    # package's entry points (tens of milliseconds of start-up). Library users keep the default.
    import numba.core.entrypoints  # noqa: E402

    numba.core.entrypoints._already_initialized = True

_FLAGS = dict(nogil=True, fastmath=False, error_model="numpy")
#: Helpers allocate nothing, so they run without numba's reference counting: with it, every call of a helper
#: that takes arrays counts each array's reference up and down through out-of-line atomic calls, which cost
#: a kernel about 80 ns per output row (a 2048x128x3 uint8 nearest warp on one thread: 0.55 ms against
#: 0.39 without).
_NO_NRT = dict(_nrt=False)


def _cached(decorator):
    """``decorator`` plus an on-disk cache keyed on the kernel's file and the shared kernel sources
    (:mod:`stntool.sampling._kernel_cache`), so an edit of the scalar maths recompiles the kernel; the
    helpers it calls are linked into it, not built on their own (:mod:`stntool.sampling._link_only`)."""

    def wrap(fn):
        dispatcher = decorator(fn)
        try:
            dispatcher._cache = _kernel_cache.cpu_cache(fn)
        except RuntimeError as e:  # no folder this user can write (a read-only container): compile in memory
            if "no locator available" not in str(e):
                raise
            from . import _compile_notice

            _compile_notice.UNCACHED = True  # the compile notice says so, and how to keep them
        return _link_only.wrap_compile(dispatcher)

    return wrap


#: Parallel entry kernels: prange over output rows, compiled once and cached on disk.
jit_parallel = _cached(numba.njit(parallel=True, **_FLAGS))
#: Serial entry kernels: one per kernel family and mode, over a range of rows (a thread pool runs
#: blocks of rows in parallel; the GIL is released), and deterministic reductions.
jit_serial = _cached(numba.njit(**_FLAGS))
#: Helpers called only from kernels: no Python or C wrapper is built for them (callable from compiled
#: code only), cached on disk so a later kernel reuses them; LLVM inlines them into their callers.
jit_device = _cached(numba.njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, **_FLAGS, **_NO_NRT))
#: Small hot helpers, inlined at the Numba IR level so the per-pixel loop has no calls.
jit_inline = _cached(numba.njit(inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True, **_FLAGS,
                                **_NO_NRT))
#: Options of ``numba.extending.overload`` implementations (compile-time choice of a path by a
#: constant mode or by dtype; compiled into, and cached with, the kernel that calls them), without
#: reference counting; :data:`ALLOCATING_OVERLOAD_OPTIONS` for those that allocate arrays.
ALLOCATING_OVERLOAD_OPTIONS = dict(_FLAGS, no_cpython_wrapper=True, no_cfunc_wrapper=True)
OVERLOAD_OPTIONS = dict(ALLOCATING_OVERLOAD_OPTIONS, **_NO_NRT)
#: The shared scalar maths (:mod:`stntool.sampling._scalar`) as CPU helpers: not cached on their
#: own (they are compiled into the kernels that call them, whose cache covers their source).
jit_scalar = numba.njit(**_FLAGS)
#: Small scalar helpers, inlined at the Numba IR level.
jit_scalar_inline = numba.njit(inline="always", **_FLAGS)

prange = numba.prange
