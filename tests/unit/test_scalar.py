"""The shared scalar sampling maths: plain Python, compiled per target, cached with its source."""

import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from stntool.sampling import _cpu, _kernel_cache, _reference, _scalar

ROOT = Path(__file__).resolve().parents[2]

EDGE_VALUES = [-7.5, -3.0, -1.0, -0.5, -0.25, 0.0, 0.5, 1.5, 2.5, 3.49, 4.0, 4.5, 5.0, 6.75, 13.0, 1e6, -1e6, 1e300]


def test_module_imports_neither_numba_nor_numpy():
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('s', {str(ROOT / 'stntool/sampling/_scalar.py')!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "print(m.rint(2.5), 'numpy' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["2.0", "False", "False"]


@pytest.mark.parametrize("size", [1, 2, 5])
@pytest.mark.parametrize("align_corners", [False, True])
def test_padding_matches_the_reference(size, align_corners):
    xs = np.array(EDGE_VALUES)
    for pad, name in enumerate(_reference.PADDINGS):
        want = _reference.apply_padding(xs, size, name, align_corners)
        for fn in (_scalar.pad_coord, _cpu._pad_coord):
            got = np.array([fn(float(x), size, pad, align_corners) for x in xs])
            np.testing.assert_array_equal(got, want, err_msg=f"{fn} {name}")


def _reflect_by_fmod(x, twice_low, twice_high):
    """PyTorch's ``reflect_coordinates`` as it is written there: two ``fmod`` calls."""
    if twice_low == twice_high:
        return 0.0
    lo, span = twice_low / 2.0, (twice_high - twice_low) / 2.0
    x = abs(x - lo)
    with np.errstate(invalid="ignore"):
        extra, flips = float(np.fmod(x, span)), float(np.floor(x / span))
        return extra + lo if float(np.fmod(flips, 2.0)) == 0.0 else span - extra + lo


@pytest.mark.parametrize("bounds", [(-1.0, 9.0), (0.0, 8.0), (-1.0, 1.0), (0.0, 2.0), (-1.0, 2047.0), (0.0, 0.0)])
def test_reflect_takes_fmod_only_beyond_two_spans_and_gives_its_bits(bounds):
    lo, span = bounds[0] / 2.0, (bounds[1] - bounds[0]) / 2.0
    rng = np.random.default_rng(5)
    xs = [lo + k * span + e for k in range(-5, 6) for e in (0.0, 5e-324, 1e-300, 1e-12, -1e-12, 0.5, -0.5)]
    xs += [float(np.nextafter(lo + k * span, d)) for k in range(-5, 6) for d in (-np.inf, np.inf)]
    xs += list(rng.uniform(-40.0, 40.0, 400) * max(span, 1.0)) + [1e17, -1e17, 1e300, math.inf, -math.inf]
    for x in xs:
        want = _reflect_by_fmod(x, *bounds)
        # (plain Python's math.fmod raises where NumPy's gives NaN: the compiled twin alone takes infinities)
        for fn in (_scalar.reflect, _cpu._s.reflect) if math.isfinite(x) else (_cpu._s.reflect,):
            got = fn(x, *bounds)
            assert (math.isnan(got) and math.isnan(want)) or (got == want and math.copysign(1, got) ==
                                                            math.copysign(1, want)), (fn, x, got, want)
    assert math.isnan(_cpu._s.reflect(math.nan, *bounds)) or bounds[0] == bounds[1]


def test_rint_is_round_half_to_even():
    xs = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 2.4999999, 2.5000001, 7.0, -0.49])
    for fn in (_scalar.rint, _cpu._rint):
        np.testing.assert_array_equal([fn(float(x)) for x in xs], np.rint(xs))


def test_weights_match_the_reference_and_sum_to_one():
    for t in (0.0, 0.1, 0.25, 0.5, 0.9, 0.999):
        want = _reference.cubic_weights(np.float64(t))
        for fn in (_scalar.cubic_weights, _cpu._cubic_weights):
            assert tuple(fn(t)) == tuple(float(v) for v in want)
        assert math.isclose(sum(_scalar.cubic_weights(t)), 1.0, abs_tol=1e-15)
        want_cr = _reference.catmull_rom_weights(t)
        for fn in (_scalar.cr_weights, _cpu._cr_weights):
            assert tuple(fn(t)) == tuple(float(v) for v in want_cr)
    # Catmull-Rom interpolates: t = 0 reads the node itself
    assert _scalar.cr_weights(0.0) == (0.0, 1.0, 0.0, 0.0)


@pytest.mark.parametrize("pad", [_scalar.ZEROS, _scalar.BORDER, _scalar.REFLECTION])
@pytest.mark.parametrize("align_corners", [False, True])
def test_pad_coord_grad_is_the_derivative(pad, align_corners):
    size = 5
    eps = 1e-6
    for x in (-6.3, -2.2, -0.7, 0.3, 1.7, 3.2, 4.6, 8.1, 13.4):
        for fn in (_scalar.pad_coord_grad, _cpu._pad_coord_grad):
            v, d = fn(x, size, pad, align_corners)
            assert v == pytest.approx(_scalar.pad_coord(x, size, pad, align_corners), abs=1e-12)
            fd = (_scalar.pad_coord(x + eps, size, pad, align_corners)
                  - _scalar.pad_coord(x - eps, size, pad, align_corners)) / (2 * eps)
            assert d == pytest.approx(fd, abs=1e-6), (fn, x)


def test_saturate_and_radial_term():
    for fn in (_scalar.saturate, _cpu._saturate):
        assert fn(-3.0, 255.0) == 0.0
        assert fn(float("nan"), 255.0) == 0.0
        assert fn(254.4, 255.0) == 254.9
        assert fn(300.0, 255.0) == 255.0
        assert fn(1e300, 65535.0) == 65535.0
    for fn in (_scalar.tps_radial, _cpu._tps_radial):
        assert fn(0.0) == 0.0
        assert fn(2.0) == 2.0 * math.log(2.0)
    assert _scalar.unnormalize(-1.0, 10, True) == 0.0 and _scalar.unnormalize(1.0, 10, False) == 9.5


def test_compile_for_rebinds_callees_and_primitives():
    seen = []

    def deco(fn):
        seen.append(fn.__name__)
        return fn

    ns = _scalar.compile_for(deco, floor=lambda v: 0.0)
    assert seen == list(_scalar.FUNCTIONS)
    assert ns.rint(2.3) == 0.0                                   # the rebound primitive is used...
    assert ns.pad_coord(5.0, 5, _scalar.REFLECTION, True) == 1.0   # ...by callees too (reflect)
    assert _scalar.rint(2.3) == 2.0                              # the module itself is untouched
    assert _scalar.pad_coord(5.0, 5, _scalar.REFLECTION, True) == 3.0
    with pytest.raises(TypeError):
        _scalar.compile_for(deco, ceil=math.ceil)


def test_sources_stamp_covers_contents(tmp_path):
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    s0 = _kernel_cache.sources_stamp([a, b])
    assert s0 == _kernel_cache.sources_stamp([a, b])
    b.write_text("y = 3\n")
    assert _kernel_cache.sources_stamp([a, b]) != s0
    assert {p.name for p in _kernel_cache.SHARED_SOURCES} == {"_scalar.py", "_jit.py", "_link_only.py"}
    assert all(p.exists() for p in _kernel_cache.SHARED_SOURCES)


def _cpu_dispatchers():
    from numba.core.registry import CPUDispatcher

    return {name: v for name, v in vars(_cpu).items()
            if isinstance(v, CPUDispatcher) and v.py_func.__module__ == _cpu.__name__}


def test_cpu_kernel_caches_are_keyed_on_the_shared_sources():
    kernels = _cpu_dispatchers()
    assert set(_cpu.ENTRIES.values()) <= set(kernels.values())
    assert {"_grid_sample_backward_parts", "_general_bilinear", "_span_bil_u8_3", "_tps_row_coords"} <= set(kernels)
    for name, k in kernels.items():
        stamp = k._cache._impl.locator.get_source_stamp()
        assert stamp[1] == _kernel_cache.shared_sources_stamp(), name


def test_a_cache_folder_is_checked_for_writing_once_per_process(tmp_path, monkeypatch):
    """Caches of several kernels in one folder check that it is writable once (numba's locator writes a
    temporary file there for every kernel), and make it again if it was removed since; a folder that
    cannot be made is refused as numba refuses it."""
    from numba.core import caching

    checks = []
    base = caching.UserProvidedCacheLocator.ensure_cache_path
    monkeypatch.setattr(caching.UserProvidedCacheLocator, "ensure_cache_path",
                        lambda self: (checks.append(self.get_cache_path()), base(self))[1])
    monkeypatch.setattr(caching.config, "CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_kernel_cache, "_WRITABLE", set())
    fns = [k.py_func for k in list(_cpu_dispatchers().values())[:3]]
    caches = [_kernel_cache.cpu_cache(f) for f in fns]
    assert len({c._cache_path for c in caches}) == 1 and len(checks) == 1
    assert os.path.isdir(caches[0]._cache_path)
    shutil.rmtree(caches[0]._cache_path)  # removed while the process runs: made again before a save
    caches[1]._impl.locator.ensure_cache_path()
    assert os.path.isdir(caches[0]._cache_path) and len(checks) == 1
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(caching.config, "CACHE_DIR", str(tmp_path / "file" / "cache"))  # under a file
    locator_cls = _kernel_cache._with_shared_stamp(caching.UserProvidedCacheLocator)
    for _ in range(2):  # numba's from_function: None where ensure_cache_path raises OSError
        assert locator_cls.from_function(fns[0], fns[0].__code__.co_filename) is None


@pytest.mark.slow
def test_editing_the_scalar_module_recompiles_cached_kernels(tmp_path):
    """A kernel cached on disk is rebuilt after an edit of _scalar.py (numba alone would load the stale one)."""
    shutil.copytree(ROOT / "stntool", tmp_path / "stntool", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "kern.py").write_text(textwrap.dedent("""
        from stntool._jit import jit_serial
        from stntool.sampling import _cpu

        @jit_serial
        def probe(x):
            return _cpu._rint(x)

        print(probe(2.5), sum(probe.stats.cache_hits.values()))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))

    def run():
        return subprocess.run([sys.executable, "kern.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              check=True).stdout.split()

    assert run() == ["2.0", "0"]                     # compiled
    assert run() == ["2.0", "1"]                     # loaded from the cache
    scalar = tmp_path / "stntool" / "sampling" / "_scalar.py"
    src = scalar.read_text()
    assert "        r -= 1.0\n    return r\n" in src
    scalar.write_text(src.replace("        r -= 1.0\n    return r\n", "        r -= 1.0\n    return r + 100.0\n"))
    assert run() == ["102.0", "0"]                   # recompiled from the edited source


def test_a_cache_hit_loads_without_numba_registries_and_a_miss_still_compiles(tmp_path):
    """Loading a kernel from the disk cache skips numba's registry refresh; the kernel still runs (here one
    that allocates through numba's runtime), and a signature missing afterwards compiles as before."""
    (tmp_path / "kern.py").write_text(textwrap.dedent("""
        import sys
        import numpy as np
        from numba.core.registry import cpu_target
        from stntool._jit import jit_serial

        @jit_serial
        def probe(x):
            return x * 3 + 1            # a new array: numba's runtime allocates it

        a = probe(np.arange(4, dtype=np.uint8))
        loaded_bare = not cpu_target.typing_context._registries and not cpu_target.target_context._registries
        b = probe(np.arange(3, dtype=sys.argv[1]) / 2)
        print(a.tolist(), b.tolist(), loaded_bare, sum(probe.stats.cache_hits.values()),
              sum(probe.stats.cache_misses.values()), bool(cpu_target.typing_context._registries))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))

    def run(second="float64"):
        return subprocess.run([sys.executable, "kern.py", second], cwd=tmp_path, env=env, capture_output=True,
                              text=True, check=True).stdout.strip()

    # first process: both signatures compiled (the registries are loaded for the first compile)
    assert run() == "[1, 4, 7, 10] [1.0, 2.5, 4.0] False 0 2 True"
    # second process: both loaded; the first load found no registries, and none were loaded for it
    assert run() == "[1, 4, 7, 10] [1.0, 2.5, 4.0] True 2 0 False"
    # a new signature after a bare load: numba refreshes and compiles it
    assert run("float32") == "[1, 4, 7, 10] [1.0, 2.5, 4.0] True 1 1 True"


def _some_kernel(x):
    return x


def test_cuda_kernel_caches_are_keyed_on_the_shared_sources():
    pytest.importorskip("numba_cuda")
    cache = _kernel_cache.cuda_cache(_some_kernel)
    from numba.cuda.dispatcher import CUDACache

    assert isinstance(cache, CUDACache)
    stamp = cache._impl.locator.get_source_stamp()
    assert stamp[1] == _kernel_cache.shared_sources_stamp()
    assert type(cache._impl.locator).__name__.startswith("Stntool")
