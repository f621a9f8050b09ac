"""Compile kernels ahead of time (Docker images, CI): call the public API on small arrays.

Each requested combination of kernel family, mode, padding and image dtype is run through the
public functions (:func:`stntool.warp`, :func:`stntool.grid_sample`, :func:`stntool.warp_tps`,
:func:`stntool.warp_backward`) on small arrays, with 1 to 4 channels and both ``align_corners``
values, so whatever signatures those calls compile land in the on-disk kernel cache, however the
kernels are laid out. Work can be spread over several processes (``spawn``, same cache folder):
numba compiles one signature on one core, so two processes compile two signatures at once.

>>> from stntool import warmup
>>> [t.name for t in warmup.plan(families=["affine"], dtypes=["uint8", "float32"])]
['affine uint8 bilinear', 'affine float32 bilinear']
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field

from .errors import InvalidArgumentError

FAMILIES = ("affine", "projective", "grid", "tps", "backward")
MODES = ("bilinear", "nearest", "bicubic")
PADDINGS = ("zeros", "border", "reflection", "constant")
DTYPES = ("uint8", "uint16", "float32", "float64")
#: What ``stntool warp --theta`` runs with its default options: 8- and 16-bit images, and float32
#: for images with alpha (warped premultiplied) and float images.
DEFAULTS = dict(families=("affine",), modes=("bilinear",), paddings=("zeros",), dtypes=("uint8", "uint16", "float32"))
CHANNELS = (1, 2, 3, 4)
_HW = (48, 64)


@dataclass(frozen=True)
class Task:
    """One family, dtype and mode, run for every requested padding, channel count and align_corners."""

    family: str
    dtype: str
    mode: str
    paddings: tuple

    @property
    def name(self) -> str:
        return f"{self.family} {self.dtype} {self.mode}" if self.family != "backward" else "backward float64 bilinear"

    @property
    def calls(self) -> int:
        per = 2 if self.family in ("grid", "tps") else 1  # float32 + float64 grids; lattice + exact TPS
        return per * len(self.paddings) * len(CHANNELS) * 2


@dataclass
class Result:
    """What a warm-up did: calls made, kernels compiled (:class:`stntool._compile_notice.Compiled`),
    failures (``(task name, message)``), the cache folders and the wall time."""

    calls: int = 0
    compiled: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    cache_dirs: list = field(default_factory=list)
    seconds: float = 0.0
    processes: int = 1
    #: no cache folder was writable: the kernels were compiled in memory only (a later run compiles them again)
    uncached: bool = False

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    def merge(self, other: "Result"):
        self.calls += other.calls
        self.compiled += other.compiled
        self.errors += other.errors
        self.cache_dirs = sorted(set(self.cache_dirs) | set(other.cache_dirs))
        self.uncached = self.uncached or other.uncached


def _check(values, allowed, what):
    values = tuple(dict.fromkeys(values))
    bad = [v for v in values if v not in allowed]
    if bad:
        raise InvalidArgumentError(f"unknown {what} {', '.join(map(repr, bad))}; choose from {', '.join(allowed)}")
    if not values:
        raise InvalidArgumentError(f"no {what} given")
    return values


def plan(families=None, modes=None, paddings=None, dtypes=None, everything: bool = False) -> list:
    """The tasks for these choices; ``None`` takes :data:`DEFAULTS` (every value when ``everything``).

    ``backward`` is bilinear on float64 (its only kernel) whatever ``modes`` and ``dtypes`` say.
    Raises :class:`InvalidArgumentError` for unknown names.
    """
    pick = (lambda given, key, allowed: _check(given if given is not None else
                                               (allowed if everything else DEFAULTS[key]), allowed, key))
    families = pick(families, "families", FAMILIES)
    modes = pick(modes, "modes", MODES)
    paddings = pick(paddings, "paddings", PADDINGS)
    dtypes = pick(dtypes, "dtypes", DTYPES)
    tasks = []
    for family in families:
        if family == "backward":
            tasks.append(Task("backward", "float64", "bilinear", paddings))
            continue
        for dtype in dtypes:
            for mode in modes:
                tasks.append(Task(family, dtype, mode, paddings))
    return tasks


def _image(dtype: str, channels: int):
    import numpy as np

    h, w = _HW
    values = (np.arange(h * w * channels) * 37 % 251).reshape(h, w, channels)
    if np.dtype(dtype).kind == "f":
        return (values / 250.0).astype(dtype)
    return (values * (257 if dtype == "uint16" else 1)).astype(dtype)


def run_task(task: Task, backend: str = "cpu", channels=CHANNELS) -> int:
    """Make every call of ``task`` for images of these channel counts; returns the number of calls. Raises
    what the API raises. (One-channel images are kernel signatures of their own for the projective, grid
    and TPS kernels; colour images of any count share one.)"""
    import numpy as np

    from . import api

    theta = [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]
    theta3 = [[0.9, -0.2, 0.0], [0.2, 0.9, 0.0], [0.1, 0.05, 1.0]]
    src = [[4, 4], [58, 5], [3, 42], [60, 44], [30, 22]]
    dst = [[6, 3], [56, 7], [5, 40], [59, 46], [28, 25]]
    calls = 0
    if task.family == "tps":  # elastic records warp through the same lattice kernels, after drawing their field
        from ._smoothing import noise_field

        noise_field(1, (4, 4), 1, np.full(3, 1.0 / 3.0), 1.0)
    if task.family == "backward":  # rectify's refinement: its gradient steps and its margin search's histograms
        from ._histograms import column_energies

        column_energies(np.arange(4.0), np.arange(4.0), np.array([0.0, 1.0, 0.0]), np.zeros(2), 8, np.empty(2))
    for padding in task.paddings:
        for c in channels:
            fill = [0.5] * c if padding == "constant" else None
            for align in (False, True):
                img = _image(task.dtype, c)
                opts = dict(padding=padding, align_corners=align, backend=backend)
                if task.family == "affine":
                    api.warp(img, theta, mode=task.mode, fill=fill, **opts)
                elif task.family == "projective":
                    api.warp(img, theta3, mode=task.mode, fill=fill, **opts)
                elif task.family == "grid":
                    grid = api.affine_grid(theta, _HW, align)
                    api.grid_sample(img, grid, mode=task.mode, fill=fill, **opts)
                    api.grid_sample(img, grid.astype(np.float32), mode=task.mode, fill=fill, **opts)
                    calls += 1
                elif task.family == "tps":
                    api.warp_tps(img, src, dst, mode=task.mode, fill=fill, **opts)
                    api.warp_tps(img, src, dst, mode=task.mode, fill=fill, tol=0, **opts)
                    calls += 1
                else:  # backward: bilinear, float64
                    grad = np.ones(_HW + (c,))
                    api.warp_backward(img, theta, grad, **opts)
                calls += 1
    return calls


def run_tasks(tasks, backend: str = "cpu", notice: bool = False) -> Result:
    """Run ``tasks`` in this process; failures are collected, not raised (``KeyboardInterrupt`` is).

    ``notice`` turns the command line's first-compile line on (or off) while the tasks run.
    """
    from . import _compile_notice, _runtime
    from .errors import StnError

    _compile_notice.install()
    before = len(_compile_notice.compiled())
    result = Result()
    was, _runtime.compile_notice = _runtime.compile_notice, bool(notice)
    try:
        for task in tasks:
            try:
                result.calls += run_task(task, backend)
            except Exception as e:  # noqa: BLE001 - reported per task (a compile error too); the others go on
                result.errors.append((task.name, str(e) if isinstance(e, StnError) else f"{type(e).__name__}: {e}"))
    finally:
        _runtime.compile_notice = was
    result.compiled = _compile_notice.compiled()[before:]
    result.cache_dirs = _compile_notice.cache_dirs()
    result.uncached = _compile_notice.UNCACHED
    return result


def _bundles(tasks, n: int) -> list:
    """The tasks as the units the ``n`` processes take one at a time: each task alone (a family, dtype and mode:
    kernel signatures of their own, so two processes never compile the same one), but the TPS tasks, which share
    the float64 plan kernels: the first dtype's in one unit that goes first (it builds the plan kernels), the
    other dtypes' last (they load them from the cache). ``n`` = 1: one unit of every task."""
    if n <= 1:
        return [list(tasks)]
    first = next((t.dtype for t in tasks if t.family == "tps"), None)
    head = [t for t in tasks if t.family == "tps" and t.dtype == first]
    return (([head] if head else []) + [[t] for t in tasks if t.family != "tps"]
            + [[t] for t in tasks if t.family == "tps" and t.dtype != first])


def run(tasks, backend: str = "cpu", jobs: int = 1, notice: bool = False) -> Result:
    """Run ``tasks``, in ``jobs`` processes (spawned, sharing this process's environment and so its
    ``NUMBA_CACHE_DIR``) when ``jobs > 1``; ``notice`` turns the first-compile lines on in each."""
    started = time.perf_counter()
    bundles = _bundles(tasks, jobs)
    jobs = max(1, min(jobs, len(bundles)))
    if jobs == 1:
        result = run_tasks([t for b in bundles for t in b], backend, notice)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        result = Result(processes=jobs)
        from concurrent.futures.process import BrokenProcessPool

        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_worker_start)
        try:
            with _sigint_blocked():  # the workers start with it blocked: ignored once they run (_worker_start)
                futures = [(b, pool.submit(run_tasks, b, backend, notice)) for b in bundles]
            for bundle, fut in futures:
                try:
                    result.merge(fut.result())
                except BrokenProcessPool as e:  # a worker died (out of memory, killed)
                    result.errors += [(t.name, f"worker process ended: {e}") for t in bundle]
        except BaseException:  # Ctrl-C (or SIGTERM) here: the workers are stopped, not waited for
            _stop_workers(pool)
            raise
        pool.shutdown(wait=True)
    result.seconds = time.perf_counter() - started
    return result


@contextlib.contextmanager
def _sigint_blocked():
    """Block SIGINT in this thread while the pool spawns its workers (on ``submit``): a child inherits the mask, so
    a Ctrl-C while it starts up stays pending until :func:`_worker_start` ignores it (which drops it), where it
    printed a traceback of the child's start-up. Here it is delivered when the block ends (a KeyboardInterrupt,
    which stops the workers). A no-op where signals cannot be masked, or off the main thread."""
    import signal

    mask = getattr(signal, "pthread_sigmask", None)
    blocked = False
    if mask is not None and threading.current_thread() is threading.main_thread():
        try:
            mask(signal.SIG_BLOCK, {signal.SIGINT})
            blocked = True
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        if blocked:
            mask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _worker_start():
    """A compiling process ignores Ctrl-C: the terminal sends it to every process of the group, and the one that
    started the workers stops them (:func:`_stop_workers`). A Ctrl-C inside a compile printed a traceback of
    LLVM's clean-up; one between tasks left the worker waiting for work that never came, and the command
    waiting for the worker."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_workers(pool, timeout: float = 5.0):
    """End ``pool``'s worker processes now (SIGTERM, then SIGKILL after ``timeout`` seconds) and let the pool go.
    A kernel cache write cut short leaves no damage: its files are written atomically (and a damaged entry is
    compiled again, see :mod:`stntool.sampling._kernel_cache`)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public way before Python 3.14
    for proc in procs:
        try:
            proc.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.perf_counter() + timeout
    for proc in procs:
        try:
            proc.join(max(0.0, deadline - time.perf_counter()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        except (OSError, ValueError, AttributeError, AssertionError):
            pass


def cache_location() -> str:
    """Where kernels are cached for this process: ``NUMBA_CACHE_DIR`` when set, else beside the modules
    (``stntool/sampling/__pycache__``), or numba's per-user folder when that is not writable."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    from . import _compile_notice

    dirs = _compile_notice.cache_dirs()
    return dirs[0] if dirs else "numba's default cache folder"
