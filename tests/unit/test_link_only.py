"""Link-only helper libraries (stntool.sampling._link_only): same results, no machine code of their own."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import numpy as np
import pytest

import stntool._jit  # noqa: F401  (installs link-only mode, as any kernel use does)
from stntool.sampling import _link_only

ROOT = Path(__file__).resolve().parents[2]
helper = numba.njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)


@helper
def _leaf(x):
    return x * 2.0 + 1.0


@helper
def _mid(a):
    s = 0.0
    for v in a:
        s += _leaf(v)
    return s


def _entry(a):
    return _mid(a) + max(a[0], a[1])


@helper
def _checked(x):
    if x < 0:
        raise ValueError("negative input")
    return np.sqrt(x)


def _entry_checked(x):
    return _checked(x) + 1.0


@helper
def _leaf_plain(x):
    return x - 3.0


def _entry_plain(a):
    return _leaf_plain(a[0])


def _library(dispatcher):
    (cres,) = dispatcher.overloads.values()
    return cres.library


def _script(tmp_path, name, source):
    """Write ``source`` to ``tmp_path / name`` and return ``run(arg, **env) -> stdout words``: the script in a
    fresh process with ``arg``, this checkout importable, a kernel cache of its own under ``tmp_path`` and the
    extra environment variables ``env``; the process must succeed."""
    (tmp_path / name).write_text(textwrap.dedent(source))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def run(arg, **extra):
        p = subprocess.run([sys.executable, name, arg], cwd=tmp_path, env=dict(env, **extra), capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout.split()
    return run


def test_installed_by_default():
    assert _link_only.enabled()
    assert _link_only.install()
    assert _link_only.stamp() == "link-only"


def test_helpers_of_a_kernel_are_linked_not_built():
    entry = _link_only.wrap_compile(numba.njit(_entry))
    a = np.array([0.5, -1.0, 2.0])
    assert entry(a) == pytest.approx(sum(2 * v + 1 for v in a) + 0.5)
    for h in (_mid, _leaf):
        lib = _library(h)
        assert lib._link_only and not lib._finalized, h.py_func.__name__
    lib = _library(entry)
    assert lib._finalized and not lib._link_only


def test_numbas_behaviour_outside_stntool_kernels():
    entry = numba.njit(_entry_plain)  # not wrapped: a user's own numba code
    assert entry(np.array([5.0])) == 2.0
    lib = _library(_leaf_plain)
    assert lib._finalized and not lib._link_only


def test_errors_raised_in_a_link_only_helper_reach_the_caller():
    entry = _link_only.wrap_compile(numba.njit(_entry_checked))
    assert entry(4.0) == 3.0
    assert _library(_checked)._link_only
    with pytest.raises(ValueError, match="negative input"):
        entry(-1.0)


def test_compiling_marks_nested_calls_on_this_thread_only():
    assert not _link_only._active()
    with _link_only.compiling():
        with _link_only.compiling():
            assert _link_only._active()
        assert _link_only._active()
    assert not _link_only._active()


def test_cached_helpers_load_as_link_only_and_modes_never_share_a_cache(tmp_path):
    """A helper cached by one kernel is loaded (as linked IR) by another kernel in a later process, and
    stays linkable after it is finalised; a process with STNTOOL_LINK_ONLY=0 (numba's behaviour) does
    not read those entries."""
    run = _script(tmp_path, "kern.py", """
        import sys
        import numpy as np
        from stntool._jit import jit_device, jit_serial
        from stntool.sampling import _link_only

        @jit_device
        def helper(a, k):
            s = 0.0
            for v in a:
                s += v * k
            return s

        @jit_serial
        def first(a):
            return helper(a, 2.0)

        @jit_serial
        def second(a):
            return helper(a, 3.0) + 1.0

        @jit_serial
        def third(a):
            return helper(a, 4.0) - 1.0

        @jit_serial
        def fourth(a):
            return helper(a, 5.0)

        a = np.arange(5.0)
        if sys.argv[1] == "finalize":  # a helper loaded from the cache, finalised (inspection does), linked again
            print(third(a), [c.library.finalize() for c in helper.overloads.values()], fourth(a))
            sys.exit()
        kernel = first if sys.argv[1] == "first" else second
        value = kernel(a)
        libs = [cres.library for cres in helper.overloads.values()]
        print(value, sum(helper.stats.cache_hits.values()), _link_only.stamp(), libs[0]._finalized if libs else "-")
    """)

    assert run("first") == ["20.0", "0", "link-only", "False"]   # helper compiled, linked into `first`
    assert run("second") == ["31.0", "1", "link-only", "False"]  # helper loaded from the cache, linked again
    assert run("finalize") == ["39.0", "[None]", "50.0"]
    assert run("second", STNTOOL_LINK_ONLY="0") == ["31.0", "0", "numba", "True"]  # its own cache entries
    assert run("second", STNTOOL_LINK_ONLY="0") == ["31.0", "0", "numba", "-"]  # `second` itself cached now


def test_kernels_load_from_the_cache_without_parsing_their_ir_until_a_caller_links_them(tmp_path):
    """A kernel loaded from the cache in a later process runs with its IR still unparsed (its defined names
    were stored beside its machine code); a function compiled afterwards that calls it links its IR, which
    is parsed then, and both give the right values."""
    run = _script(tmp_path, "kern.py", """
        import sys
        import numba
        import numpy as np
        from stntool._jit import jit_serial
        from stntool.sampling import _link_only

        @jit_serial
        def kernel(a):
            s = 0.0
            for v in a:
                s += v * v
            return s

        a = np.arange(5.0)
        value = kernel(a)
        lib = next(iter(kernel.overloads.values())).library
        lazy = lib._lazy_bitcode is not None
        state = None
        if sys.argv[1] == "first":
            with _link_only.compiling():  # as when the kernel was saved
                state = lib.serialize_using_object_code()

        @numba.njit(cache=False)
        def caller(a):
            return kernel(a) + 1.0

        print(value, sum(kernel.stats.cache_hits.values()), lazy, state[1] if state else "-", caller(a),
              lib._lazy_bitcode is None)
    """)

    assert run("first") == ["30.0", "0", "False", _link_only.OBJECT_KIND, "31.0", "True"]  # compiled, stored
    assert run("again") == ["30.0", "1", "True", "-", "31.0", "True"]  # loaded lazily; linked by `caller`


def test_a_users_own_cached_functions_stay_readable_without_stntool(tmp_path):
    """A user's ``njit(cache=True)`` function (one of them calling a stntool kernel) cached in a process that
    imported stntool and ran its kernels is stored in numba's own form: a process with numba's behaviour
    (STNTOOL_LINK_ONLY=0) loads it from the cache."""
    run = _script(tmp_path, "user.py", """
        import sys
        import numba
        import numpy as np

        if sys.argv[1] == "stntool":
            import stntool
            stntool.warp(np.zeros((8, 8), np.uint8), [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        from stntool._jit import jit_serial

        @jit_serial
        def kernel(a):
            return a.sum() * 2.0

        @numba.njit(cache=True)
        def add1(x):
            return x + 1

        @numba.njit(cache=True)
        def calls_kernel(a):
            return kernel(a) + 1.0

        print(add1(1), calls_kernel(np.arange(4.0)), sum(add1.stats.cache_hits.values()),
              sum(calls_kernel.stats.cache_hits.values()))
    """)

    assert run("stntool") == ["2", "13.0", "0", "0"]
    assert run("numba", STNTOOL_LINK_ONLY="0") == ["2", "13.0", "1", "1"]
