"""The first-compile line and the compile clock (stntool._compile_notice), without compiling stntool's kernels."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
from numba.core import types

from stntool import _compile_notice as cn
from stntool import _runtime, batch


@pytest.fixture
def notice(monkeypatch):
    """Listener installed, state reset, lines collected in a list."""
    cn.install()
    cn._reset_for_tests()
    lines = []
    cn.set_compile_notice(lines.append)
    yield lines
    cn._reset_for_tests()


class _Cache:
    def __init__(self, path):
        self.cache_path = path


class _FakeDispatcher:
    def __init__(self, name, module="stntool.sampling._cpu", cache_path="/cache/sampling"):
        def img_kernel(img, maps, out):
            pass

        img_kernel.__name__ = img_kernel.__qualname__ = name
        img_kernel.__module__ = module
        self.py_func = img_kernel
        self._cache = _Cache(cache_path)


U8 = types.Array(types.uint8, 4, "C")
F64 = types.Array(types.float64, 3, "C")


def _event(d, args=(U8, F64, U8)):
    return {"dispatcher": d, "args": args, "return_type": None}


def test_one_line_for_the_outermost_compile_only(notice):
    outer, helper = _FakeDispatcher("warp_matrix"), _FakeDispatcher("_sample_span")
    cn._on_start(_event(outer))
    cn._on_start(_event(helper))      # a helper compiling inside the kernel
    cn._on_end(_event(helper))
    cn._on_end(_event(outer))
    assert notice == ["stntool: compiling kernels for uint8 warp_matrix (first run only, cached in /cache/sampling)"]
    assert [c.label for c in cn.compiled()] == ["uint8 warp_matrix"]
    assert cn.compile_seconds() > 0


def test_the_helper_threads_wait_is_neither_announced_nor_counted(notice):
    # a helper thread compiles it after its first tasks, off the batch's path: its line ("compiling kernels for
    # int64 watch") came after the summary, naming an internal function
    watch, inner, kernel = _FakeDispatcher("_watch"), _FakeDispatcher("_fetch_add"), _FakeDispatcher("warp_matrix")
    cn._on_start(_event(watch, (types.Array(types.int64, 1, "C"),)))
    cn._on_start(_event(inner))
    cn._on_end(_event(inner))
    cn._on_end(_event(watch))
    assert notice == [] and cn.compiled() == [] and cn.compile_seconds() == 0
    cn._on_start(_event(kernel))
    cn._on_end(_event(kernel))
    assert len(notice) == 1 and [c.label for c in cn.compiled()] == ["uint8 warp_matrix"]


def test_once_per_kernel_and_dtype(notice):
    d = _FakeDispatcher("warp_matrix")
    for args in [(U8, F64, U8), (U8, F64, U8), (types.Array(types.uint16, 4, "C"), F64, U8)]:
        cn._on_start(_event(d, args))
        cn._on_end(_event(d, args))
    assert [line.split(" (")[0] for line in notice] == ["stntool: compiling kernels for uint8 warp_matrix",
                                                       "stntool: compiling kernels for uint16 warp_matrix"]
    assert len(cn.compiled()) == 3  # every compile is timed, even when its line was already said


def test_cuda_kernels_report_through_stntools_cuda_cache(notice, monkeypatch, tmp_path):
    """numba-cuda broadcasts no compile event: stntool's CUDA cache says a kernel compiles on a miss and
    counts the time until the kernel is stored (numba-cuda compiles between the two; checked on a GPU)."""
    pytest.importorskip("numba_cuda")
    import time

    from numba.cuda import dispatcher

    from stntool.sampling import _kernel_cache

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    loaded = []
    monkeypatch.setattr(dispatcher.CUDACache, "load_overload", lambda self, sig, ctx: loaded.pop() if loaded else None)
    monkeypatch.setattr(dispatcher.CUDACache, "save_overload", lambda self, sig, data: None)

    def _k_warp_matrix_bilinear(img, maps, out):
        pass

    cache = _kernel_cache.cuda_cache(_k_warp_matrix_bilinear)
    assert cache.load_overload((U8, F64, U8), None) is None  # a miss: the compile starts
    time.sleep(0.05)
    cache.save_overload((U8, F64, U8), object())  # numba-cuda stores what it compiled
    assert len(notice) == 1 and notice[0].startswith("stntool: compiling kernels for uint8 CUDA warp_matrix_bilinear "
                                                     "(first run only, cached in ")
    assert [c.label for c in cn.compiled()] == ["uint8 CUDA warp_matrix_bilinear"]
    assert 0.05 <= cn.compile_seconds() < 5
    loaded.append("a kernel")  # a hit says nothing and counts nothing
    assert cache.load_overload((U8, F64, U8), None) == "a kernel"
    assert len(notice) == 1 and len(cn.compiled()) == 1


def test_other_packages_are_ignored(notice):
    theirs = _FakeDispatcher("user_fn", module="myproject.kernels")
    cn._on_start(_event(theirs))
    cn._on_end(_event(theirs))
    assert notice == [] and cn.compiled() == [] and cn.compile_seconds() == 0.0


def test_off_by_default_for_library_users(monkeypatch):
    cn.install()
    cn._reset_for_tests()
    monkeypatch.setattr(_runtime, "compile_notice", False)
    assert cn._target() is None
    monkeypatch.setattr(_runtime, "compile_notice", True)  # what the command line sets
    assert cn._target() is cn._stderr_line
    with cn.lines_to(None):  # the batch runner with --quiet
        assert cn._target() is None
    cn.set_compile_notice(False)
    assert cn._target() is None
    with pytest.raises(TypeError):
        cn.set_compile_notice("yes")
    cn._reset_for_tests()


def test_label_uses_the_image_argument_else_the_first_array():
    assert cn.label(_FakeDispatcher("warp_matrix"), (F64, F64, U8)) == "float64 warp_matrix"

    def terms(points, centres):
        pass

    d = _FakeDispatcher("x")
    d.py_func = terms
    assert cn.label(d, (types.float64, F64)) == "float64 terms"
    assert cn.label(d, (types.float64, types.int64)) == "terms"

    def warp_tps_bilinear(img, lattice, out):
        pass

    d.py_func = warp_tps_bilinear  # a one-channel image of the points kernels is a signature of its own: said so
    grey = types.Array(types.uint8, 3, "C")
    assert cn.label(d, (grey, F64, grey)) == "uint8 grey warp_tps_bilinear"
    assert cn.label(d, (types.Array(types.uint8, 4, "C"), F64, grey)) == "uint8 warp_tps_bilinear"
    d.py_func = terms  # no image parameter: the first array's dtype only
    assert cn.label(d, (grey, F64)) == "uint8 terms"


def test_cache_dir_falls_back_to_numba_cache_dir(monkeypatch):
    d = _FakeDispatcher("k")
    d._cache = object()  # numba's NullCache has no path
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere")
    assert cn.cache_dir(d) == "/somewhere"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    assert cn.cache_dir(d) is None
    assert cn.message("uint8 k", None) == "stntool: compiling kernels for uint8 k (first run only)"


def _stntool_njit(name):
    """A real tiny njit function that the notice counts as stntool's (compiles in well under a second)."""
    def helper(x):
        return x * 2

    helper.__module__ = "stntool.probe"
    helper_jit = numba.njit(helper)

    def kernel(img):
        s = 0.0
        for v in img.ravel():
            s += helper_jit(v)
        return s

    kernel.__module__ = "stntool.probe"
    kernel.__name__ = name
    return numba.njit(kernel)


def test_batch_summary_leaves_compile_time_out(tmp_path, notice, capsys):
    kernel = _stntool_njit("probe_kernel")
    for name in "ab":
        with open(tmp_path / f"{name}.png", "wb") as f:
            from stntool import io

            f.write(io.encode_image(np.full((4, 5, 3), 7, np.uint8), "png"))
    items, _ = batch.discover([str(tmp_path)])
    batch.plan_outputs(items, str(tmp_path / "out"))

    def process(img, item):
        kernel(img)
        return batch.Output(img)

    summary = batch.run_batch(items, process, backend="cpu", jobs=2, progress=False)
    assert summary.ok == 2
    assert notice == [l for l in notice if "uint8 probe_kernel" in l] and len(notice) == 1
    assert 0 < summary.compile_seconds <= summary.elapsed
    err = capsys.readouterr().err
    assert "images/s excluding" in err and "s compiling kernels)" in err


def test_summary_line_unchanged_without_compiling():
    s = batch.Summary(command="stntool warp", ok=5, elapsed=2.5)
    assert s.line() == "stntool warp: 5 ok, 0 skipped, 0 failed in 2.50 s (2.0 images/s)"
    s.compile_seconds = 2.0
    assert s.line() == ("stntool warp: 5 ok, 0 skipped, 0 failed in 2.50 s "
                        "(10.0 images/s excluding 2.0 s compiling kernels)")


PROBE = """
import numba

@numba.njit(cache=True)
def helper(x):
    return x * 2

@numba.njit(cache=True)
def kernel(img):
    s = 0.0
    for v in img.ravel():
        s += helper(v)
    return s
"""

DRIVER = """
import sys, numpy as np
from stntool import _compile_notice as cn
cn.PACKAGES = ("probe_kernels.",)
cn.set_compile_notice(True)
import probe_kernels
probe_kernels.kernel(np.zeros(3, np.uint8))
probe_kernels.kernel(np.zeros(3, np.uint8))
probe_kernels.kernel(np.zeros(3, np.float32))
print(len(cn.compiled()), cn.compile_seconds() > 0)
"""


def _fresh_processes(tmp_path, module, source, driver):
    """``(cache, run)``: ``run()`` runs ``driver`` in a fresh Python that can import ``module`` (``source``) and
    caches kernels in ``cache``, and returns its stdout's words and stderr's lines."""
    (tmp_path / f"{module}.py").write_text(source)
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))

    def run():
        p = subprocess.run([sys.executable, "-c", textwrap.dedent(driver)], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return p.stdout.split(), p.stderr.splitlines()

    return cache, run


def test_real_compiles_and_cache_hits_in_fresh_processes(tmp_path):
    cache, run = _fresh_processes(tmp_path, "probe_kernels", PROBE, DRIVER)
    out, err = run()
    assert out == ["2", "True"]
    assert [line.split(", cached in ")[0] for line in err] == [
        "stntool: compiling kernels for uint8 kernel (first run only",
        "stntool: compiling kernels for float32 kernel (first run only"]
    assert all(line.split(", cached in ")[1].startswith(str(cache)) for line in err)
    out, err = run()  # everything now loads from the cache: no line, no compile time
    assert out == ["0", "False"] and err == []


def test_without_a_writable_cache_folder_kernels_compile_in_memory_and_the_notice_says_so(monkeypatch):
    """numba finds no folder it can write (a read-only container with no writable home): the kernel still
    compiles and runs (it raised at import, a traceback from every command), and the notice says why it will
    compile again next time."""
    from stntool import _jit
    from stntool.sampling import _kernel_cache

    def no_locator(fn):
        raise RuntimeError(f"cannot cache function {fn.__name__!r}: no locator available for file 'x.py'")

    monkeypatch.setattr(_kernel_cache, "cpu_cache", no_locator)
    monkeypatch.setattr(cn, "UNCACHED", False)

    def add_one(a):
        return a + 1

    kernel = _jit.jit_serial(add_one)
    assert kernel(np.int64(2)) == 3 and cn.UNCACHED
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    line = cn.message("uint8 warp_affine_bilinear", "/ro/cache")
    assert "not cached: no folder this user can write" in line and "NUMBA_CACHE_DIR" in line and "/ro" not in line
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/ro/cache")  # set, but not writable: name it
    line = cn.message("uint8 warp_affine_bilinear", "/ro/cache")
    assert "not cached: NUMBA_CACHE_DIR=/ro/cache is not writable" in line

    def other(fn):
        raise RuntimeError("something else")

    monkeypatch.setattr(_kernel_cache, "cpu_cache", other)
    with pytest.raises(RuntimeError, match="something else"):
        _jit.jit_serial(add_one)


STNTOOL_PROBE = """
import numpy as np
from stntool import _jit

@_jit.jit_serial
def kernel(img):
    s = 0.0
    for v in img.ravel():
        s += v * 2.0
    return s
"""

STNTOOL_DRIVER = """
import numpy as np
from stntool import _compile_notice as cn
cn.PACKAGES = ("probe_stntool_kernels.",)
cn.set_compile_notice(True)
import probe_stntool_kernels
print(probe_stntool_kernels.kernel(np.arange(4, dtype=np.uint8)), len(cn.compiled()))
"""


@pytest.mark.parametrize("damage", ["nbc half", "nbc empty", "nbc garbage", "nbi half", "nbi empty", "nbi garbage"])
def test_a_damaged_cache_entry_compiles_again_and_is_replaced(tmp_path, damage):
    """A cache file cut short, emptied or overwritten (a full disk, a CI cache restored in part) made every later run
    fail with an UnpicklingError traceback (an emptied one: click's "Aborted!"), until the cache was deleted."""
    cache, fresh = _fresh_processes(tmp_path, "probe_stntool_kernels", STNTOOL_PROBE, STNTOOL_DRIVER)

    def run():
        return fresh()[0]

    assert run() == ["12.0", "1"]
    assert run() == ["12.0", "0"]  # from the cache
    kind, how = damage.split()
    files = sorted(cache.rglob(f"probe_stntool_kernels.kernel-*.{kind}"))
    assert files
    for f in files:
        data = f.read_bytes()
        f.write_bytes({"half": data[:len(data) // 2], "empty": b"", "garbage": os.urandom(len(data))}[how])
    assert run() == ["12.0", "1"]  # a miss: compiled again ...
    assert run() == ["12.0", "0"]  # ... and the entry replaced


def test_a_cache_that_cannot_be_saved_says_so_once_and_never_fails_the_call(monkeypatch):
    from stntool.sampling import _kernel_cache

    lines = []
    monkeypatch.setattr(cn, "_target", lambda: lines.append)
    monkeypatch.setattr(cn, "_said_once", set())

    class Cache:
        _cache_path = "/full/disk"

        class _cache_file:
            _index_path = "/nonexistent/x.nbi"

    def full(sig, data):
        raise OSError(28, "No space left on device")

    for _ in range(2):
        _kernel_cache._save_or_say(full, Cache, None, None)
    assert lines == ["stntool: warning: cannot write the kernel cache in /full/disk (No space left on device); the "
                     "kernels compiled now run from memory and compile again next run"]
    saved = []

    def damaged_index_once(sig, data):  # numba reads the index before adding to it: a damaged one raises
        if not saved:
            saved.append("refused")
            raise EOFError("Ran out of input")
        saved.append(data)

    removed = []
    monkeypatch.setattr(os, "remove", removed.append)
    _kernel_cache._save_or_say(damaged_index_once, Cache, None, "code")
    assert saved == ["refused", "code"] and removed == ["/nonexistent/x.nbi"] and len(lines) == 1


def test_a_run_waiting_for_another_process_s_cache_lock_says_so(tmp_path, monkeypatch):
    """A warm run waited silently, for as long as another process held the cache folder's lock; a wait of a few
    milliseconds (the batch's own second compiling process saving a kernel) is not worth a line."""
    import fcntl
    import threading

    from stntool.sampling import _kernel_cache

    lines = []
    monkeypatch.setattr(cn, "_target", lambda: lines.append)
    monkeypatch.setattr(cn, "_said_once", set())
    monkeypatch.setattr(_kernel_cache, "QUIET_WAIT", 0.3)
    held = os.open(tmp_path / _kernel_cache.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    got = threading.Event()

    def load():
        with _kernel_cache.folder_lock(str(tmp_path), exclusive=False):
            got.set()

    fcntl.flock(held, fcntl.LOCK_EX)  # held briefly, as another process saving a kernel
    t = threading.Thread(target=load)
    t.start()
    assert not got.wait(0.1)
    fcntl.flock(held, fcntl.LOCK_UN)
    t.join(10)
    assert got.is_set() and lines == []
    got.clear()
    fcntl.flock(held, fcntl.LOCK_EX)  # held on, as another process writing a big kernel, or stopped
    t = threading.Thread(target=load)
    t.start()
    try:
        assert not got.wait(0.8)
        assert lines == [f"stntool: waiting for the kernel cache in {tmp_path} (another stntool process holds its "
                         f"lock, {tmp_path / _kernel_cache.LOCK_NAME})"]
    finally:
        os.close(held)  # releases it
    t.join(10)
    assert got.is_set() and len(lines) == 1
    with _kernel_cache.folder_lock(str(tmp_path), exclusive=True):
        pass
    assert len(lines) == 1  # nothing to wait for: no line
