"""Rotation sign and pivot: the convention of OpenCV, scikit-image, torchvision and Kornia.

Positive angles turn the picture counter-clockwise as displayed (x right, y down). Expectations
come from ``cv2.getRotationMatrix2D`` (computed live) and from exact quarter turns (``np.rot90``).
"""

import cv2
import numpy as np
import pytest

import stntool
from stntool import transforms as T


@pytest.mark.parametrize("degrees", [-170.0, -90.0, -33.3, 0.0, 12.0, 45.0, 90.0, 135.0, 180.0, 270.0, 400.0])
@pytest.mark.parametrize("center", [(0.0, 0.0), (30.0, 20.0), (12.5, -7.25), (511.5, 383.5)])
@pytest.mark.parametrize("scale", [0.5, 1.0, 1.7])
def test_rotate_equals_cv2_get_rotation_matrix_2d(degrees, center, scale):
    ours = T.compose(T.rotate(degrees, center=center), T.scale(scale, center=center))
    ref = cv2.getRotationMatrix2D(center, degrees, scale)
    np.testing.assert_allclose(ours[:2], ref, rtol=0, atol=1e-12 * max(1.0, *np.abs(center)))
    np.testing.assert_array_equal(ours[2], [0.0, 0.0, 1.0])


def test_positive_angle_turns_counter_clockwise_on_screen():
    # y points down: a point right of the pivot goes up (smaller y), a point above it goes left
    c = (10.0, 10.0)
    np.testing.assert_allclose(T.apply_matrix(T.rotate(90, c), [[13.0, 10.0], [10.0, 7.0]]),
                               [[10.0, 7.0], [7.0, 10.0]], atol=1e-12)
    small = T.apply_matrix(T.rotate(5, c), [[13.0, 10.0]])[0]
    assert small[0] < 13.0 and small[1] < 10.0


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("n", [5, 6])
@pytest.mark.parametrize("degrees,k", [(90, 1), (180, 2), (270, 3), (-90, -1), (-270, 1), (360, 0)])
def test_quarter_turns_about_the_centre_equal_rot90(backend, align_corners, n, degrees, k):
    img = np.random.default_rng(n).integers(0, 255, (n, n, 2)).astype(np.float32)
    m = T.rotate(degrees, center=((n - 1) / 2.0, (n - 1) / 2.0))
    theta = T.theta_from_pixel_map(m, (n, n), align_corners=align_corners)
    out = stntool.warp(img, theta, mode="nearest", align_corners=align_corners, backend=backend)
    np.testing.assert_array_equal(out, np.rot90(img, k))


def test_quarter_turn_of_a_wide_image_equals_rot90():
    # 4x7 -> 7x4: turn +90 about the origin, then shift the result back into view
    wide = np.arange(28, dtype=np.float64).reshape(4, 7)
    m = T.compose(T.rotate(90), T.translate(0, 6))
    theta = T.theta_from_pixel_map(m, (4, 7), (7, 4))
    np.testing.assert_array_equal(stntool.warp(wide, theta, (7, 4), mode="nearest", backend="numpy"),
                                  np.rot90(wide))


def test_rotation_matches_cv2_warp_affine_on_an_image():
    # the same angle given to both libraries gives the same picture
    rng = np.random.default_rng(8)
    img = cv2.GaussianBlur(rng.random((40, 50)).astype(np.float32), (7, 7), 2.0)
    center = (24.5, 19.5)
    theta = T.theta_from_pixel_map(T.rotate(20, center=center), (40, 50))
    ours = stntool.warp(img, theta, backend="numpy")
    ref = cv2.warpAffine(img, cv2.getRotationMatrix2D(center, 20, 1.0), (50, 40), flags=cv2.INTER_LINEAR)
    assert np.abs(ours - ref)[10:-10, 10:-10].max() < 0.01    # OpenCV quantizes weights to 1/32
    flipped = stntool.warp(img, T.theta_from_pixel_map(T.rotate(-20, center=center), (40, 50)), backend="numpy")
    assert np.abs(flipped - ref)[10:-10, 10:-10].max() > 0.05
