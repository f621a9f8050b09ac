"""On-disk kernel caching keyed on every source file a kernel is compiled from.

Numba keys a cached kernel on the source file of the kernel's own function only. stntool's
kernels also compile code from :mod:`stntool.sampling._scalar` (the shared scalar maths) and
take their JIT flags from :mod:`stntool._jit`; with numba's default key, editing those files
would leave stale kernels in the cache. The caches here add a fingerprint of those files
(:func:`shared_sources_stamp`, a SHA-256 of their contents) to numba's own stamp of the
kernel's file, so a change to any of them invalidates every kernel built from it.

The hook is numba's cache locator (its ``get_source_stamp``): each of numba's own locators is
subclassed, so the cache directory rules (``NUMBA_CACHE_DIR``, in-tree ``__pycache__``,
user-wide fallback) are unchanged. :func:`cpu_cache` and :func:`cuda_cache` build the cache
object of one dispatcher; :mod:`stntool._jit` and :mod:`stntool.sampling._cuda` install it as the
dispatcher's cache (numba's ``enable_caching`` does the same with its default cache class).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]

#: Source files compiled into (or configuring) every kernel, besides the kernel's own module.
SHARED_SOURCES = (_PACKAGE / "sampling" / "_scalar.py", _PACKAGE / "_jit.py")


def sources_stamp(paths) -> str:
    """SHA-256 over the names and contents of ``paths`` (a missing file counts as empty)."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError:
            pass
        h.update(b"\0")
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def shared_sources_stamp() -> str:
    """:func:`sources_stamp` of :data:`SHARED_SOURCES`, computed once per process."""
    return sources_stamp(SHARED_SOURCES)


def _with_shared_stamp(locator_cls):
    """A subclass of a numba cache locator whose source stamp also covers :data:`SHARED_SOURCES`."""

    def get_source_stamp(self):
        return (super(cls, self).get_source_stamp(), shared_sources_stamp())

    cls = type("Stntool" + locator_cls.__name__.lstrip("_"), (locator_cls,), {"get_source_stamp": get_source_stamp})
    return cls


@functools.lru_cache(maxsize=None)
def _cpu_cache_class():
    from numba.core import caching

    impl = type("StntoolCompileResultCacheImpl", (caching.CompileResultCacheImpl,),
                {"_locator_classes": [_with_shared_stamp(c) for c in caching.CompileResultCacheImpl._locator_classes]})
    return type("StntoolFunctionCache", (caching.FunctionCache,), {"_impl_class": impl})


@functools.lru_cache(maxsize=None)
def _cuda_cache_class():
    from numba.cuda import dispatcher

    base_impl = dispatcher.CUDACacheImpl
    impl = type("StntoolCUDACacheImpl", (base_impl,),
                {"_locator_classes": [_with_shared_stamp(c) for c in base_impl._locator_classes]})
    return type("StntoolCUDACache", (dispatcher.CUDACache,), {"_impl_class": impl})


def cpu_cache(py_func):
    """The on-disk cache of a ``numba.njit`` dispatcher of ``py_func``, keyed on the shared sources too."""
    return _cpu_cache_class()(py_func)


def cuda_cache(py_func):
    """The on-disk cache of a ``numba.cuda.jit`` kernel of ``py_func``, keyed on the shared sources too."""
    return _cuda_cache_class()(py_func)
