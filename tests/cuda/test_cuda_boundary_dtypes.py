"""backend="cuda" converts host arrays at the boundary like every other backend (see tests/unit/test_boundary_dtypes.py)."""

import numpy as np
import pytest

import stntool
from stntool.errors import InvalidArgumentError

THETA = [[0.9, -0.3, 0.1], [0.25, 1.05, -0.05]]


def _img(dtype):
    v = np.random.default_rng(0).random((5, 7))
    return np.round(v * 65535).astype(dtype) if np.dtype(dtype).kind == "u" else v.astype(dtype)


@pytest.mark.parametrize("variant", [">u2", "read-only", "non-contiguous"])
def test_image_variants(variant):
    native = _img(np.uint16)
    img = {">u2": lambda: native.astype(">u2"), "read-only": lambda: _read_only(native),
           "non-contiguous": lambda: np.repeat(native, 2, 1)[:, ::2]}[variant]()
    got = stntool.warp(img, THETA, backend="cuda")
    assert got.dtype == np.uint16 and got.dtype.isnative
    np.testing.assert_array_equal(got, stntool.warp(native, THETA, backend="cuda"))


def _read_only(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def test_float16_image_and_grids():
    img16 = _img(np.float16)
    got = stntool.warp(img16, THETA, backend="cuda")
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, stntool.warp(img16.astype(np.float32), THETA, backend="cuda").astype(np.float16))
    img = _img(np.float32)
    grid = stntool.affine_grid(THETA, (3, 4))
    for g in (grid.astype(np.float16), grid.astype(np.longdouble), grid.astype(">f8")):
        np.testing.assert_array_equal(stntool.grid_sample(img, g, backend="cuda"),
                                      stntool.grid_sample(img, g.astype(np.float64), backend="cuda"))


def test_refused():
    with pytest.raises(InvalidArgumentError):
        stntool.warp(_img(np.float64).astype(complex), THETA, backend="cuda")
    with pytest.raises(InvalidArgumentError):
        stntool.grid_sample(_img(np.float32), np.zeros((2, 2, 2), bool), backend="cuda")
