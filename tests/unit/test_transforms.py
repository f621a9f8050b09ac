"""θ builders, conversions to and from OpenCV, and fitting."""

import cv2
import numpy as np
import pytest

import stntool
from stntool import transforms as T
from stntool.coords import norm_from_pixel, norm_to_pixel, pixel_from_norm, pixel_to_norm


@pytest.mark.parametrize("align_corners", [False, True])
def test_pixel_norm_round_trip(align_corners):
    for hw in [(1, 1), (3, 8), (480, 640)]:
        p = np.array([[0.0, 0.0], [hw[1] - 1.0, hw[0] - 1.0], [0.3, 2.5]])
        np.testing.assert_allclose(norm_to_pixel(pixel_to_norm(p, hw, align_corners), hw, align_corners)
                                   if min(hw) > 1 else p[:1] * 0, p if min(hw) > 1 else p[:1] * 0, atol=1e-12)
        if min(hw) > 1:
            np.testing.assert_allclose(norm_from_pixel(hw, align_corners) @ pixel_from_norm(hw, align_corners),
                                       np.eye(3), atol=1e-14)


def test_corner_conventions():
    # align_corners=False: -1 is the left edge of the first pixel; True: its centre
    assert norm_to_pixel([[-1.0, -1.0]], (4, 10), False).tolist() == [[-0.5, -0.5]]
    assert norm_to_pixel([[-1.0, 1.0]], (4, 10), True).tolist() == [[0.0, 3.0]]


def _cv2_matrix():
    return cv2.getRotationMatrix2D((30.0, 20.0), 17.0, 0.9) + np.array([[0, 0, 3.0], [0, 0, -2.0]])


@pytest.mark.parametrize("align_corners", [False, True])
def test_cv2_round_trip(align_corners):
    m = _cv2_matrix()
    theta = stntool.theta_from_cv2(m, (40, 60), (35, 50), align_corners=align_corners)
    assert theta.shape == (2, 3)
    np.testing.assert_allclose(stntool.theta_to_cv2(theta, (40, 60), (35, 50), align_corners=align_corners), m,
                               atol=1e-12)
    inv = stntool.theta_from_cv2(cv2.invertAffineTransform(m), (40, 60), (35, 50), inverse_map=True,
                                 align_corners=align_corners)
    np.testing.assert_allclose(inv, theta, atol=1e-12)
    h = np.vstack([m, [1e-4, -2e-4, 1.0]])
    th = stntool.theta_from_cv2(h, (40, 60), (35, 50), align_corners=align_corners)
    assert th.shape == (3, 3)
    back = stntool.theta_to_cv2(th, (40, 60), (35, 50), align_corners=align_corners)
    np.testing.assert_allclose(back / back[2, 2], h / h[2, 2], atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_warp_matches_cv2_warp_affine(backend):
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (80, 100, 3), dtype=np.uint8), (5, 5), 1.5)
    m = cv2.getRotationMatrix2D((50.0, 40.0), 23.0, 1.2)
    theta = stntool.theta_from_cv2(m, (80, 100), (70, 90))
    ours = stntool.warp(img, theta, out_hw=(70, 90), backend=backend).astype(int)
    ref = cv2.warpAffine(img, m, (90, 70), flags=cv2.INTER_LINEAR).astype(int)
    # away from the image border (where OpenCV's default padding differs)
    mask = stntool.warp(np.full((80, 100), 255, np.uint8), theta, (70, 90), padding="zeros", backend="numpy") == 255
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert mask.sum() > 1000
    assert np.abs(ours - ref)[mask].max() <= 1


def test_warp_matches_cv2_warp_perspective():
    rng = np.random.default_rng(4)
    img = cv2.GaussianBlur(rng.random((60, 80)).astype(np.float32), (5, 5), 1.5)
    src = np.float32([[0, 0], [79, 0], [79, 59], [0, 59]])
    dst = np.float32([[5, 3], [70, 8], [75, 55], [2, 50]])
    h = cv2.getPerspectiveTransform(src, dst)
    theta = stntool.theta_from_cv2(h, (60, 80))
    ours = stntool.warp(img, theta, backend="cpu")
    ref = cv2.warpPerspective(img, h, (80, 60), flags=cv2.INTER_LINEAR)
    assert np.abs(ours - ref)[10:-10, 10:-10].max() < 0.02  # OpenCV quantizes weights to 1/32


def test_builders_compose_and_invert():
    m = T.compose(T.translate(3, 4), T.rotate(30), T.scale(2.0, 0.5))
    p = np.array([[1.0, 2.0]])
    manual = T.apply_matrix(T.scale(2.0, 0.5), T.apply_matrix(T.rotate(30), T.apply_matrix(T.translate(3, 4), p)))
    np.testing.assert_allclose(T.apply_matrix(m, p), manual)
    np.testing.assert_allclose(T.apply_matrix(T.invert(m), T.apply_matrix(m, p)), p, atol=1e-12)
    th = np.array([[0.9, 0.1, 0.2], [-0.1, 1.1, 0.0]])
    np.testing.assert_allclose(T.compose(T.invert(th), th), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(T.apply_matrix(T.hflip(10), [[0.0, 5.0]]), [[9.0, 5.0]])
    np.testing.assert_allclose(T.apply_matrix(T.vflip(4), [[2.0, 0.0]]), [[2.0, 3.0]])
    np.testing.assert_allclose(T.apply_matrix(T.shear(45, 0), [[0.0, 1.0]]), [[1.0, 1.0]], atol=1e-12)
    with pytest.raises(stntool.DegenerateError):
        T.invert(np.zeros((2, 3)))


def test_fit_affine_and_projective():
    rng = np.random.default_rng(5)
    src = rng.uniform(0, 100, (12, 2))
    a = T.compose(T.rotate(12), T.scale(1.3, 0.8), T.translate(4, -7))
    np.testing.assert_allclose(stntool.fit_affine(src, T.apply_matrix(a, src)), a, atol=1e-9)
    h = np.array([[1.1, 0.05, 3.0], [-0.02, 0.95, -4.0], [1e-3, -5e-4, 1.0]])
    dst = T.apply_matrix(h, src)
    np.testing.assert_allclose(T.apply_matrix(stntool.fit_projective(src, dst), src), dst, atol=1e-8)
    four = src[:4]
    np.testing.assert_allclose(T.apply_matrix(stntool.fit_projective(four, dst[:4]), four), dst[:4], atol=1e-8)


def test_fit_degenerate_inputs_raise():
    line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    with pytest.raises(stntool.DegenerateError, match="collinear"):
        stntool.fit_affine(line, line)
    with pytest.raises(stntool.DegenerateError):
        stntool.fit_projective(line, line)
    three_on_a_line = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    with pytest.raises(stntool.DegenerateError):
        stntool.fit_projective(three_on_a_line, three_on_a_line + 1)
    with pytest.raises(stntool.DegenerateError, match="at least"):
        stntool.fit_affine(line[:2], line[:2])
    with pytest.raises(stntool.InvalidArgumentError):
        stntool.fit_affine([[0, 0], [1, np.nan], [0, 1]], [[0, 0], [1, 0], [0, 1]])
