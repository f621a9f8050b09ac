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

Several processes may fill one cache folder at once (``stntool warmup -j 2``, the batch runner's
second compiling process, two commands started together). Numba's index update is a
read-modify-write of one index file per kernel (all its signatures), so two processes saving
signatures of one kernel together could lose an entry, or both number their code file ``.1.nbc``
and leave an index pointing at the other signature's code. The CPU cache here therefore holds an
exclusive ``flock`` on a lock file in the cache folder (:data:`LOCK_NAME`) while it saves, and a
shared one while it loads (where ``fcntl`` exists; elsewhere, and when the lock file cannot be
opened, numba's behaviour is unchanged). A process that is told to stop while it saves waits for
the save to finish (:data:`SAVING`).

A damaged entry (an index or code file cut short, emptied or overwritten: a full disk, a cache restored
in part) is a miss: the kernel compiles again and its save replaces the entry (a damaged index is
started again). A save that fails (a full disk, a folder made read-only meanwhile) leaves the kernel
running from memory, with one warning line (:func:`stntool._compile_notice.cache_not_written`); it
never fails the call that compiled the kernel.

Loading a kernel skips numba's refresh of its typing and lowering registries, which numba's loader
does before every load (about 0.2 s once per process) and which loading machine code does not need; a
signature missing from the cache refreshes them before it is compiled.

When numba finds a signature missing from the cache, the CPU cache asks :data:`pending` (set by
:mod:`stntool._compile_ahead` while a second process compiles signatures for this one) whether
another process is compiling it; if so it waits for that process and loads the result, so this
process does not compile the same signature again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None

_PACKAGE = Path(__file__).resolve().parents[1]

#: Source files compiled into (or configuring) every kernel, besides the kernel's own module.
SHARED_SOURCES = (_PACKAGE / "sampling" / "_scalar.py", _PACKAGE / "_jit.py",
                  _PACKAGE / "sampling" / "_link_only.py")

#: The lock file in each cache folder (see the module docstring).
LOCK_NAME = "stntool-cache.lock"
#: Held by this process while it writes cache files: code that ends the process (a second compiling
#: process told to stop) takes it first, so it never leaves a save half done.
SAVING = threading.Lock()
#: ``pending(kernel_name, claim_key) -> bool`` or None (:func:`claim_key`: the image dtype, and whether one
#: channel). Called when a signature is not in the cache;
#: returns True once another process has compiled it (after waiting), False when this process should
#: compile it. Set by :mod:`stntool._compile_ahead`.
pending = None


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


#: Cache folders this process has found writable (:func:`_with_shared_stamp`'s ``ensure_cache_path``).
_WRITABLE = set()


def _with_shared_stamp(locator_cls):
    """A subclass of a numba cache locator whose source stamp also covers :data:`SHARED_SOURCES`, and which
    checks that a cache folder is writable once per process: numba's locator creates and removes a
    temporary file in it for every kernel it builds a cache for (75 kernels and helpers of one module share
    one folder: about 15 ms of every process's start)."""

    def get_source_stamp(self):
        from . import _link_only

        return (super(cls, self).get_source_stamp(), shared_sources_stamp(), _link_only.stamp())

    def ensure_cache_path(self):
        path = self.get_cache_path()
        if path in _WRITABLE:
            os.makedirs(path, exist_ok=True)  # numba saves after this: the folder may have been removed since
            return
        super(cls, self).ensure_cache_path()  # raises where the folder cannot be written
        _WRITABLE.add(path)

    cls = type("Stntool" + locator_cls.__name__.lstrip("_"), (locator_cls,),
               {"get_source_stamp": get_source_stamp, "ensure_cache_path": ensure_cache_path})
    return cls


@contextlib.contextmanager
def folder_lock(folder, exclusive: bool):
    """Hold an advisory lock on :data:`LOCK_NAME` in ``folder`` (shared or exclusive); a no-op where
    ``fcntl`` is missing, the folder does not exist or the lock file cannot be opened."""
    fd = None
    if fcntl is not None and folder and os.path.isdir(folder):
        try:
            fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:
            try:
                fd = os.open(os.path.join(folder, LOCK_NAME), os.O_RDONLY)
            except OSError:
                fd = None
        if fd is not None:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                except BlockingIOError:  # another process holds it: wait, and say so when that takes a while
                    _wait_for_lock(fd, mode, folder)
            except OSError:
                os.close(fd)
                fd = None
            except BaseException:  # Ctrl-C while waiting: the descriptor is not left open
                os.close(fd)
                raise
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


#: Seconds a process waits for another's cache lock before it says that it waits: a kernel's save holds the lock
#: for milliseconds (the batch's second compiling process, ``warmup -j N``'s workers), a stopped process for ever.
QUIET_WAIT = 1.0


def _wait_for_lock(fd, mode, folder):
    """Take the lock on ``fd`` (``fcntl`` ``mode``), which another process holds; after :data:`QUIET_WAIT` seconds
    say once that this one waits, then wait for as long as it takes."""
    import time

    deadline = time.monotonic() + QUIET_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.005)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
    from .. import _compile_notice

    _compile_notice.waiting_for_cache(folder)
    fcntl.flock(fd, mode)


def _save_or_say(save, cache, sig, data):
    """``save(sig, data)`` (a numba cache's own save); when the index is damaged, remove it and save once more; when
    saving fails anyway, say so once (the kernel, compiled, runs from memory)."""
    from .. import _compile_notice

    try:
        save(sig, data)
        return
    except OSError as e:
        failure = e
    except Exception:  # noqa: BLE001 - numba unpickles the index before it adds to it: a damaged one raises
        try:
            os.remove(cache._cache_file._index_path)
            save(sig, data)
            return
        except Exception as e:  # noqa: BLE001 - see below
            failure = e
    _compile_notice.cache_not_written(str(cache._cache_path), failure)


def _first_array(sig):
    """The first array type in a numba signature (or argument types), or None."""
    return next((t for t in sig if getattr(t, "dtype", None) is not None and hasattr(t, "ndim")), None)


def image_dtype(sig) -> str | None:
    """The dtype name (``"uint8"``) of the first array type in a numba signature, or None."""
    t = _first_array(sig)
    return None if t is None else str(t.dtype)


def claim_key(sig) -> str | None:
    """What a claim of the second compiling process (:mod:`stntool._compile_ahead`) names for a signature:
    :func:`image_dtype`, plus ``" grey"`` when its first array has three dimensions (a one-channel image of the
    kernels that take those as ``(N, H, W)``: ``stntool.sampling._cpu.GREY``)."""
    t = _first_array(sig)
    return None if t is None else str(t.dtype) + (" grey" if t.ndim == 3 else "")


@functools.lru_cache(maxsize=None)
def _cpu_cache_class():
    from numba.core import caching
    from numba.core.runtime import rtsys

    impl = type("StntoolCompileResultCacheImpl", (caching.CompileResultCacheImpl,),
                {"_locator_classes": [_with_shared_stamp(c) for c in caching.CompileResultCacheImpl._locator_classes]})

    class StntoolFunctionCache(caching.FunctionCache):
        """numba's function cache with the folder lock, and a wait for a signature another process compiles."""

        _impl_class = impl

        def _load_light(self, sig, target_context):
            # numba's load_overload first refreshes the whole target context (imports and installs
            # every typing and lowering registry: about 0.2 s, once per process) although loading
            # machine code needs only the runtime's symbols. A miss refreshes as numba does: the
            # compile that follows needs the registries. A numba without these internals loads as
            # it always did.
            try:
                if not (hasattr(self, "_load_overload") and hasattr(self, "_guard_against_spurious_io_errors")):
                    with folder_lock(self._cache_path, exclusive=False):
                        return super().load_overload(sig, target_context)
                rtsys.initialize(target_context)
                with folder_lock(self._cache_path, exclusive=False):
                    with self._guard_against_spurious_io_errors():
                        return self._load_overload(sig, target_context)
            except Exception:  # noqa: BLE001 - a damaged entry (cut short, emptied, overwritten) is a miss
                return None
            return None  # the guard swallowed an I/O error

        def load_overload(self, sig, target_context):
            from .._interrupts import sigint_deferred

            # Ctrl-C held back while machine code loads: llvmlite calls back into Python from the JIT, and a
            # KeyboardInterrupt raised in that callback is printed and dropped (the run then went on, status 0)
            with sigint_deferred():
                cres = self._load_light(sig, target_context)
            ask = pending
            if cres is None and ask is not None and self._enabled:
                try:
                    ready = ask(self._py_func.__name__, claim_key(sig))
                except Exception:  # noqa: BLE001 - never let the wait break a compile: compile here
                    ready = False
                if ready:
                    with sigint_deferred():
                        cres = self._load_light(sig, target_context)
            if cres is None:
                target_context.refresh()
            return cres

        def save_overload(self, sig, data):
            with SAVING:
                try:
                    self._impl.locator.ensure_cache_path()  # the lock file lives there (numba makes it anyway)
                except OSError:
                    pass
                with folder_lock(self._cache_path, exclusive=True):
                    _save_or_say(super().save_overload, self, sig, data)

    return StntoolFunctionCache


@functools.lru_cache(maxsize=None)
def _cuda_cache_class():
    from numba.cuda import dispatcher

    from .. import _compile_notice

    base_impl = dispatcher.CUDACacheImpl
    impl = type("StntoolCUDACacheImpl", (base_impl,),
                {"_locator_classes": [_with_shared_stamp(c) for c in base_impl._locator_classes]})

    class StntoolCUDACache(dispatcher.CUDACache):
        """numba-cuda's kernel cache, telling :mod:`stntool._compile_notice` when a kernel compiles: numba-cuda's
        dispatcher compiles right after a miss here and stores the kernel right after compiling."""

        _impl_class = impl

        def load_overload(self, sig, target_context):
            try:
                kernel = super().load_overload(sig, target_context)
            except Exception:  # noqa: BLE001 - a damaged entry is a miss, as for the CPU kernels
                kernel = None
            if kernel is None:
                _compile_notice.cuda_compile_started(self._py_func.__name__, image_dtype(sig),
                                                     str(self._cache_path))
            return kernel

        def save_overload(self, sig, data):
            try:
                _save_or_say(super().save_overload, self, sig, data)
            finally:
                _compile_notice.cuda_compile_finished()

    return StntoolCUDACache


def cpu_cache(py_func):
    """The on-disk cache of a ``numba.njit`` dispatcher of ``py_func``, keyed on the shared sources too."""
    return _cpu_cache_class()(py_func)


def cuda_cache(py_func):
    """The on-disk cache of a ``numba.cuda.jit`` kernel of ``py_func``, keyed on the shared sources too."""
    return _cuda_cache_class()(py_func)
