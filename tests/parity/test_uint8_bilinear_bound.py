"""uint8 bilinear on the cpu backend against the exact value (the NumPy reference in float64).

The cpu backend interpolates uint8 images in exact integer arithmetic on weights rounded to 15 bits:
the result is the exact bilinear value at a coordinate moved by at most 2**-16 px along each axis,
rounded half up. A value changes by at most 255 per pixel along an axis, so the value before
rounding is within BOUND = 255 * 2**-15 (< 0.008 grey level) of the exact one. Checked here on
every kernel family and channel count: the result equals the exact value rounded wherever that
value is farther than BOUND from a half level, and is never more than one level from it.
"""

import numpy as np
import pytest

import stntool
from stntool.sampling import _reference as ref
from stntool.transforms import pixel_map_from_theta

BOUND = 255 * 2.0 ** -15


def check(got, exact):
    got = np.asarray(got).astype(np.int64)
    rounded = np.clip(np.floor(exact + 0.5), 0, 255)
    assert np.abs(got - rounded).max() <= 1
    far = np.abs(exact - np.floor(exact) - 0.5) > BOUND
    assert far.mean() > 0.9
    bad = np.argwhere(far & (got != rounded))
    assert bad.size == 0, f"{len(bad)} values differ from the exact value rounded, e.g. at {bad[:3].tolist()}"


@pytest.mark.parametrize("channels", [1, 3, 4, 5])
@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_and_grid_within_bound(channels, align_corners):
    rng = np.random.default_rng(channels + 10 * align_corners)
    img = rng.integers(0, 256, (2, 23, 31, channels)).astype(np.uint8)
    theta = np.array([[[0.83, -0.31, 0.05], [0.29, 0.91, -0.07]], [[1.1, 0.2, -0.1], [-0.15, 0.7, 0.12]]])
    out_hw = (37, 41)
    got = stntool.warp(img, theta, out_hw=out_hw, align_corners=align_corners, backend="cpu")
    maps = pixel_map_from_theta(theta, img.shape[1:3], out_hw, align_corners)
    out = np.empty((2,) + out_hw + (channels,), np.float64)
    exact = ref.warp_matrix_spec(img.astype(np.float64), maps, out, "bilinear", "zeros", align_corners)
    check(got, exact)

    grid = rng.uniform(-1.05, 1.05, (2, 29, 33, 2))
    got = stntool.grid_sample(img, grid, align_corners=align_corners, backend="cpu")
    check(got, ref.grid_sample_float64(img, grid, "bilinear", "zeros", align_corners))


def test_projective_within_bound():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (1, 40, 50, 3)).astype(np.uint8)
    theta = np.array([[0.9, -0.2, 0.05], [0.2, 0.9, 0.0], [0.1, 0.05, 1.0]])
    got = stntool.warp(img, theta, backend="cpu")
    maps = pixel_map_from_theta(theta, (40, 50), (40, 50), False)[None]
    out = np.empty((1, 40, 50, 3))
    check(got, ref.warp_matrix_spec(img.astype(np.float64), maps, out, "bilinear", "zeros", False))


def test_one_axis_within_half_the_bound():
    """Rows that repeat: only x moves the value, by at most 255 * 2**-16 from the weight's rounding
    (a truncated weight would move it by up to 255 * 2**-15, always downwards on a rising edge)."""
    rng = np.random.default_rng(7)
    row = np.tile([0, 255], 32).astype(np.uint8)
    img = np.repeat(row[None, :, None], 6, axis=0)[None]
    grid = rng.uniform(-0.95, 0.95, (1, 200, 200, 2))
    got = np.asarray(stntool.grid_sample(img, grid, align_corners=True, backend="cpu")).astype(np.int64)
    exact = ref.grid_sample_float64(img, grid, "bilinear", "zeros", True)
    rounded = np.floor(exact + 0.5)
    far = np.abs(exact - np.floor(exact) - 0.5) > 255 * 2.0 ** -16
    assert np.abs(got - rounded).max() <= 1
    np.testing.assert_array_equal(got[far], rounded[far])
