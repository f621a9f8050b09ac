"""Shared helpers for the CUDA tests: random inputs and reference calls."""

import numpy as np

from stntool.sampling import _cuda
from stntool.sampling import _reference as ref

#: Under the simulator the kernels run the reference's float64 arithmetic exactly; a real GPU may
#: contract multiply-adds (FMA), which can move a value across a rounding tie.
INT_TOL = 0 if _cuda._simulator_enabled() else 1

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]
MODES = ["nearest", "bilinear", "bicubic"]
PADDINGS = ["zeros", "border", "reflection", "constant"]


def random_image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    return (rng.random(shape) * 4.0 - 1.0).astype(dtype)


def opts(dtype, channels, padding, rng):
    """``(is_int, maxv, fill (C,), fill for the reference)``."""
    dtype = np.dtype(dtype)
    is_int = dtype.kind == "u"
    maxv = float(np.iinfo(dtype).max) if is_int else 0.0
    if padding == "constant":
        top = maxv if is_int else 1.0
        # integer fills for integer images: a fill of k + 0.5 sits on a rounding tie, where the
        # reference's fill * (sum of weights) and the kernels' exact fill may round differently
        fill = np.round(rng.random(channels) * top, 0 if is_int else 3)
        return is_int, maxv, fill, fill
    return is_int, maxv, np.zeros(channels), None


def assert_matches(got, expected):
    """Integers: equal (the kernels use the reference's float64 arithmetic); floats: to rounding."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if got.dtype.kind == "u":
        diff = np.abs(got.astype(np.int64) - expected.astype(np.int64))
        assert diff.max() <= INT_TOL, f"max integer difference {diff.max()} at {np.argwhere(diff)[:5].tolist()}"
    else:
        tol = 1e-5 if got.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def affine_maps(rng, n):
    """``(n, 3, 3)`` in_pix_from_out_pix maps that reach outside a 5x7 input (so padding matters)."""
    maps = np.zeros((n, 3, 3))
    for k in range(n):
        a = rng.uniform(-0.6, 0.6)
        s = rng.uniform(0.7, 1.6)
        maps[k, :2, :2] = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        maps[k, :2, 2] = rng.uniform(-3.0, 3.0, 2)
        maps[k, 2, 2] = 1.0
    return maps


def reference_warp_matrix(img, maps, out_shape, mode, padding, align_corners, fill_ref):
    out = np.empty(out_shape, img.dtype)
    return ref.warp_matrix_spec(img, maps, out, mode, padding, align_corners, fill_ref)
