"""Say when a kernel compiles for the first time, and count the seconds spent compiling.

stntool's Numba kernels compile on their first call with a new signature (several seconds each)
and are then loaded from the on-disk cache. This module listens to numba's ``"numba:compile"``
event, which numba broadcasts only on a cache *miss* (``Dispatcher.compile`` first tries the disk
cache), around the compilation itself. For each outermost compile of one of stntool's own kernels
(a kernel's helpers compile inside it and fire nested events, which are not reported) it

* writes one line, before the compile starts and once per kernel and image dtype::

      stntool: compiling kernels for uint8 warp_affine_bilinear (first run only, cached in /path/to/cache)

* adds the compile's wall time to :func:`compile_seconds` (thread-safe), so the batch runner's
  summary can leave compile time out of its images-per-second figure.

Nothing here imports numba until :func:`install` is called (``import stntool`` and
``stntool --help`` stay light). The command line turns the line on (``_runtime.compile_notice``)
and the batch runner installs the listener when the first image reaches a kernel; library users
get no line unless they ask for one::

    import stntool
    stntool.set_compile_notice(True)          # the line on stderr
    stntool.set_compile_notice(logging.getLogger("myapp").info)   # or any callable taking a str
    stntool.set_compile_notice(False)         # silent again (the seconds are still counted)

The CUDA backend's kernels compile through numba-cuda's dispatcher, which broadcasts no compile
event; stntool's CUDA disk cache (:func:`stntool.sampling._kernel_cache.cuda_cache`) reports instead:
a miss starts the compile (:func:`cuda_compile_started`, the same line, labelled ``uint8 CUDA
warp_matrix_bilinear``) and the store that follows it ends it (:func:`cuda_compile_finished`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

from . import _runtime

#: Modules whose dispatchers count as stntool's kernels (prefixes of ``py_func.__module__``).
PACKAGES = ("stntool.",)
#: stntool functions compiled off a batch's path, neither announced nor counted (with what they call): the
#: helper threads' wait between calls (``module.qualname``), which a helper compiles after its first tasks
#: and which no image waits for.
UNANNOUNCED = ("stntool.sampling._cpu._watch",)

_lock = threading.Lock()
_local = threading.local()
_installed = False
_notify = None  # None: follow _runtime.compile_notice; False: off; True: stderr; callable: called with the line
_writers = []  # stack of temporary writers (the batch runner's progress-bar-aware writer; None = silent)
_seconds = 0.0
_said = set()
_compiled = []


@dataclass(frozen=True)
class Compiled:
    """One outermost compile of a stntool kernel: its label, wall seconds and cache folder (or None)."""

    label: str
    seconds: float
    cache_dir: str | None


def set_compile_notice(on=True):
    """Turn the first-compile line on (``True``: stderr), off (``False``), or send it to a callable.

    A callable receives the line (a ``str`` without newline), e.g. ``logging.getLogger(...).info``.
    Installs numba's event listener (this imports numba). The line appears once per kernel and
    image dtype per process, and only when the kernel is not in the on-disk cache.
    """
    global _notify
    if not (isinstance(on, bool) or callable(on)):
        raise TypeError("set_compile_notice takes True, False or a callable")
    _notify = on
    install()


def compile_seconds() -> float:
    """Wall seconds this process has spent compiling stntool kernels since :func:`install`."""
    with _lock:
        return _seconds


def compiled() -> list:
    """The :class:`Compiled` records of this process, in order."""
    with _lock:
        return list(_compiled)


def install():
    """Register the listener with numba (once per process; imports numba with stntool's settings)."""
    global _installed
    if _installed:
        return
    with _lock:
        if _installed:
            return
        from . import _jit  # noqa: F401  numba, imported the way stntool's kernels import it
        from numba.core import event

        event.register("numba:compile", _listener())
        _installed = True


class lines_to:
    """Context manager: while inside, first-compile lines go to ``writer(line)`` (``None``: dropped).

    Used by the batch runner so the line goes through its progress bar, or is dropped with ``--quiet``.
    Applies only when the line is on and goes to stderr (``set_compile_notice(True)`` or the command
    line); a callable given to :func:`set_compile_notice` keeps receiving it.
    """

    def __init__(self, writer):
        self.writer = writer

    def __enter__(self):
        with _lock:
            _writers.append(self.writer)
        return self

    def __exit__(self, *exc):
        with _lock:
            _writers.remove(self.writer)


#: The entry kernels that take one-channel images as ``(N, H, W)`` arrays, a signature of their own
#: (``stntool.sampling._cpu.GREY``): the projective, grid and TPS entries.
_GREY_KERNELS = ("warp_projective_", "sample_grid_", "warp_tps_")


def kernel_name(dispatcher) -> str:
    """A kernel's name as the notices print it: its function's, without leading underscores."""
    return dispatcher.py_func.__name__.lstrip("_")


def label(dispatcher, args) -> str:
    """``"uint8 warp_matrix"``: the kernel's name, after the dtype of its image argument when it has one, and
    ``grey`` when that is a one-channel image of the kernels that take those as ``(N, H, W)`` arrays (a
    signature of their own: ``"uint8 grey warp_tps_bilinear"``, as the second compiling process names it)."""
    py_func = dispatcher.py_func
    name = kernel_name(dispatcher)
    try:
        import inspect

        params = list(inspect.signature(py_func).parameters)
    except (TypeError, ValueError):
        params = []
    from .sampling._kernel_cache import claim_key, image_dtype

    image = next((args[params.index(p)] for p in ("img", "image") if p in params and params.index(p) < len(args)),
                 None)
    if image is None:  # no image parameter: the first array argument
        key = image_dtype(args)
    else:
        key = claim_key((image,)) if py_func.__name__.startswith(_GREY_KERNELS) else image_dtype((image,))
    return f"{key} {name}" if key is not None else name


def cache_dir(dispatcher) -> str | None:
    """The folder where ``dispatcher`` keeps its compiled code: its cache's path, else ``NUMBA_CACHE_DIR``."""
    path = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
    if path:
        return str(path)
    return os.environ.get("NUMBA_CACHE_DIR") or None


def cache_dirs() -> list:
    """Cache folders of every stntool kernel loaded in this process (normally one), sorted."""
    found = set()
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name + ".").startswith(PACKAGES):
            continue
        for obj in list(vars(mod).values()):
            if hasattr(obj, "py_func") and hasattr(obj, "_cache"):
                path = getattr(obj._cache, "cache_path", None)
                if path:
                    found.add(str(path))
    return sorted(found)


#: Set when no kernel cache folder could be written (numba found no writable place): kernels compile in memory,
#: on every run, and the notice says so.
UNCACHED = False


def message(lbl: str, where: str | None, elsewhere: bool = False) -> str:
    """The line shown for a first compile (``elsewhere``: by a second process, see :mod:`stntool._compile_ahead`)."""
    if UNCACHED:
        bad = os.environ.get("NUMBA_CACHE_DIR")
        why = (f"NUMBA_CACHE_DIR={bad} is not writable; set it to a folder this user can write" if bad else
               "no folder this user can write; set NUMBA_CACHE_DIR to one")
        return f"stntool: compiling kernels for {lbl} (not cached: {why} to compile them once)"
    tail = f", cached in {where}" if where else ""
    return f"stntool: compiling kernels for {lbl}{' in a second process' if elsewhere else ''} (first run only{tail})"


_said_once = set()  # (what, cache folder) of the lines said once per folder


def _say_once(what: str, folder: str, line: str):
    """Show ``line`` unless a line of this kind (``what``) was shown for this cache folder already."""
    with _lock:
        if (what, folder) in _said_once:
            return
        _said_once.add((what, folder))
    target = _target()
    if target is not None:
        try:
            target(line)
        except Exception:  # noqa: BLE001 - a notice must never break a run
            pass


def cache_not_written(folder: str, error: BaseException):
    """Say once per cache folder that a compiled kernel could not be saved there (a full disk: the kernel runs from
    memory and compiles again next run)."""
    why = getattr(error, "strerror", None) or str(error) or type(error).__name__
    _say_once("unwritten", folder, f"stntool: warning: cannot write the kernel cache in {folder} ({why}); the kernels "
                                   "compiled now run from memory and compile again next run")


def waiting_for_cache(folder: str):
    """Say once per cache folder that this process waits for another one that holds the folder's lock (writing a
    kernel, or stopped while it held the lock)."""
    _say_once("wait", folder, f"stntool: waiting for the kernel cache in {folder} (another stntool process holds its "
                              f"lock, {os.path.join(folder, 'stntool-cache.lock')})")


def announce_elsewhere(lbl: str, where: str | None):
    """Say that a second process compiles ``lbl`` for this one (the line is not remembered: if that
    process fails and this one compiles the kernel itself, that compile has its own line)."""
    target = _target()
    if target is not None:
        try:
            target(message(lbl, where, elsewhere=True))
        except Exception:  # noqa: BLE001 - a notice must never break a run
            pass


def count_wait(lbl: str, seconds: float, where: str | None):
    """Count ``seconds`` spent waiting for another process to compile ``lbl`` as compile time."""
    global _seconds
    with _lock:
        _seconds += seconds
        _compiled.append(Compiled(lbl + " (second process)", seconds, where))


def _stderr_line(line: str):
    lock = getattr(sys.modules.get("stntool.io"), "STDERR_LOCK", None)  # decoders capture fd 2 under it
    try:
        if lock is not None:
            with lock:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
        else:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _target():
    """Where a line goes now: a callable, or None (no line)."""
    notify = _notify if _notify is not None else bool(getattr(_runtime, "compile_notice", False))
    if notify is False:
        return None
    if notify is not True:
        return notify  # the caller's own callable wins over the batch runner's writer
    with _lock:
        if _writers:
            return _writers[-1]
    return _stderr_line


def _ours(dispatcher) -> bool:
    mod = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
    return (mod + ".").startswith(PACKAGES)


def _listener():
    """A numba event listener calling :func:`_on_start` / :func:`_on_end` (numba's base class is
    imported here, not at module import)."""
    from numba.core import event

    class CompileListener(event.Listener):
        def on_start(self, ev):
            _on_start(ev.data)

        def on_end(self, ev):
            _on_end(ev.data)

    return CompileListener()


def _on_start(data):
    dispatcher = data.get("dispatcher")
    if not _ours(dispatcher):
        return
    depth = getattr(_local, "depth", 0)
    _local.depth = depth + 1
    if depth:
        return  # a helper compiling inside one of our kernels: the outer compile is reported
    py_func = getattr(dispatcher, "py_func", None)
    _local.quiet = f"{getattr(py_func, '__module__', '')}.{getattr(py_func, '__qualname__', '')}" in UNANNOUNCED
    if not _local.quiet:
        _started(label(dispatcher, data.get("args", ())), cache_dir(dispatcher))


def _on_end(data):
    if not _ours(data.get("dispatcher")):
        return
    depth = getattr(_local, "depth", 0) - 1
    _local.depth = max(depth, 0)
    if depth > 0:
        return
    if getattr(_local, "quiet", False):
        _local.quiet = False
        return
    _finished()


def cuda_compile_started(kernel_name: str, dtype: str | None, where: str | None):
    """A CUDA kernel missed the disk cache and compiles now (``kernel_name``: its function's name,
    ``_k_warp_matrix_bilinear``; ``dtype``: its image's). Called by stntool's CUDA cache."""
    name = kernel_name[3:] if kernel_name.startswith("_k_") else kernel_name.lstrip("_")
    _started(f"{dtype} CUDA {name}" if dtype else f"CUDA {name}", where)


def cuda_compile_finished():
    """The CUDA kernel whose compile :func:`cuda_compile_started` announced is compiled (and being stored)."""
    if getattr(_local, "current", None) is not None:
        _finished()


def _started(lbl: str, where: str | None):
    """One outermost compile starts: the line (once per label), and its clock."""
    _local.started = time.perf_counter()
    _local.current = (lbl, where)
    with _lock:
        first = lbl not in _said
        _said.add(lbl)
    if first:
        target = _target()
        if target is not None:
            try:
                target(message(lbl, where))
            except Exception:  # noqa: BLE001 - a notice must never break a compile
                pass


def _finished():
    """The compile :func:`_started` announced has ended: its seconds are counted."""
    global _seconds
    seconds = time.perf_counter() - getattr(_local, "started", time.perf_counter())
    lbl, where = getattr(_local, "current", None) or ("?", None)
    _local.current = None
    with _lock:
        _seconds += seconds
        _compiled.append(Compiled(lbl, seconds, where))


def _reset_for_tests():
    """Forget lines said and seconds counted (tests only; the listener stays installed)."""
    global _seconds, _notify
    with _lock:
        _seconds = 0.0
        _said.clear()
        _compiled.clear()
        _writers.clear()
        _notify = None
