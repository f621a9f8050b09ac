"""The kernel table: every backend exposes the same kernels with the same signatures."""

import inspect

import numpy as np
import pytest

import stntool
from stntool.sampling import KERNELS, _cpu, _reference, kernels


def _params(fn):
    fn = getattr(fn, "py_func", fn)  # numba dispatchers
    return list(inspect.signature(fn).parameters)


def _backend_modules():
    mods = [_reference, _cpu]
    try:
        from stntool.sampling import _cuda  # imports numba-cuda; does not initialise CUDA
    except ImportError:
        pass
    else:
        mods.append(_cuda)
    return mods


def test_every_backend_has_the_table_with_one_signature():
    assert set(KERNELS) == {"warp_matrix", "sample_grid", "warp_tps_lattice", "grid_sample_backward",
                            "tps_eval_terms", "tps_lattice_points"}
    mods = _backend_modules()
    for name, params in KERNELS.items():
        for mod in mods:
            assert _params(getattr(mod, name)) == list(params), (mod.__name__, name)


def test_kernels_returns_the_backend_module():
    assert kernels("numpy") is _reference
    assert kernels("cpu") is _cpu
    with pytest.raises(stntool.InvalidArgumentError):
        kernels("auto")


def test_api_has_no_per_backend_branches():
    src = inspect.getsource(stntool.api)
    for needle in ('== "numpy"', '== "cpu"', '== "cuda"', "_cpu", "_cuda", "_reference"):
        assert needle not in src


def test_reference_table_takes_option_ids(rng):
    """The reference's table entries take mode / pad ids and write ``out`` like the compiled kernels."""
    img = (rng.random((2, 6, 7, 3)) * 255).astype(np.uint8)
    grid = rng.uniform(-1.2, 1.2, (1, 5, 4, 2))
    fill = np.array([10.0, 20.0, 30.0])
    for mode in range(3):
        for pad in range(4):
            want = _reference.grid_sample(img, np.broadcast_to(grid, (2, 5, 4, 2)), _reference.MODES[mode],
                                          _reference.PADDINGS[pad], True, fill if pad == 3 else None)
            out = np.empty((2, 5, 4, 3), np.uint8)
            _reference.sample_grid(img, grid, out, mode, pad, True, fill if pad == 3 else np.zeros(3), True, 255.0)
            np.testing.assert_array_equal(out, want)


def test_backward_returns_image_and_grid_gradients(rng):
    img = rng.random((1, 5, 6, 2))
    grid = rng.uniform(-1, 1, (1, 4, 3, 2))
    go = rng.standard_normal((1, 4, 3, 2))
    gi_ref, gg_ref = _reference.grid_sample_backward(img, grid, go, 2, False, True)
    gi, gg = _cpu.grid_sample_backward(img, grid, go, 2, False, True)
    assert gi.shape == img.shape and gg.shape == grid.shape
    np.testing.assert_allclose(gi, gi_ref, atol=1e-12)
    np.testing.assert_allclose(gg, gg_ref, atol=1e-12)


def test_tps_plan_terms_cpu_matches_reference(rng):
    tps = stntool.grids.make_tps(rng.uniform(-1, 1, (6, 2)), rng.uniform(-1, 1, (6, 2)))
    pts = rng.uniform(-1.2, 1.2, (40, 2))
    pts[0] = tps.centres[1]
    args = (pts, np.ascontiguousarray(tps.centres), np.ascontiguousarray(tps.weights), np.ascontiguousarray(tps.affine))
    got = (np.empty((40, 2)), np.empty((40, 6)))
    want = (np.empty((40, 2)), np.empty((40, 6)))
    _cpu.tps_eval_terms(*args, *got)
    _reference.tps_eval_terms(*args, *want)
    np.testing.assert_allclose(got[0], tps(pts), atol=1e-12)
    np.testing.assert_allclose(got[0], want[0], atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], atol=1e-12)
    assert got[1][0, 1] == 0.0 == want[1][0, 1]
