"""Nearest warps with border and reflection padding read the pixels the NumPy reference reads, bit for bit:
axis-aligned warps through their padded column tables (every pixel of every row), others through the
border loop that rounds in fixed point and clamps (ties included: a zoom out by half about the centre puts
every pixel on one)."""

import numpy as np
import pytest

import stntool

DTYPES = [np.uint8, np.uint16, np.float32, np.float64]


def _both(img, theta, out_hw, padding, ac):
    kw = dict(out_hw=out_hw, mode="nearest", padding=padding, align_corners=ac)
    return stntool.warp(img, theta, backend="cpu", **kw), stntool.warp(img, theta, backend="numpy", **kw)


@pytest.mark.parametrize("padding", ["border", "reflection"])
@pytest.mark.parametrize("ac", [False, True])
def test_axis_aligned_warps_read_the_reference_pixels(padding, ac):
    rng = np.random.default_rng(11)
    for trial in range(60):
        h, w = rng.integers(1, 40, 2)
        img = (rng.random((h, w, [1, 2, 3, 4, 5][trial % 5])) * 200).astype(DTYPES[trial % 4])
        s = rng.choice([0.5, 1.0, 2.0, 0.25, 1.1, 3.0, 0.1]) * rng.choice([-1, 1])
        t = rng.choice([0.0, 0.5, -0.37, 1.2, 3.5])
        theta = [[0, s, t], [s * 0.8, 0, -t]] if trial % 3 == 0 else [[s, 0, t], [0, s * 1.3, -t / 2]]
        a, b = _both(img, theta, tuple(rng.integers(1, 50, 2)), padding, ac)
        np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}")


@pytest.mark.parametrize("ac", [False, True])
def test_border_warps_of_any_matrix_read_the_reference_pixels(ac):
    rng = np.random.default_rng(12)
    for trial in range(80):
        h, w = rng.integers(1, 60, 2)
        img = (rng.random((rng.integers(1, 3), h, w, [1, 2, 3, 4][trial % 4])) * 200).astype(DTYPES[trial % 4])
        theta = rng.normal(size=(2, 3)) * rng.choice([0.5, 1, 2, 4])
        if trial % 4 == 0:
            theta = np.round(theta * 4) / 4  # many pixels on ties
        a, b = _both(img, theta, tuple(rng.integers(1, 70, 2)), "border", ac)
        np.testing.assert_array_equal(a, b, err_msg=f"trial {trial}")


@pytest.mark.parametrize("padding", ["border", "reflection"])
def test_a_zoom_out_by_half_about_the_centre(padding):
    img = np.random.default_rng(13).integers(0, 256, (64, 48, 3), dtype=np.uint8)
    for theta in ([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [[2.0, 0.0, 0.01], [0.0, -2.0, 0.0]]):
        a, b = _both(img, theta, (64, 48), padding, False)
        np.testing.assert_array_equal(a, b)
