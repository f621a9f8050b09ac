"""θ builders, conversions to and from OpenCV, and fitting."""

import math

import cv2
import numpy as np
import pytest

import stntool
from stntool import transforms as T
from stntool.errors import InvalidArgumentError
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


def test_builders_against_literal_matrices_and_opencv():
    # the composition test above builds its expectation from these builders: check each on its own
    np.testing.assert_array_equal(T.scale(2.0, 0.5), np.diag([2.0, 0.5, 1.0]))
    np.testing.assert_array_equal(T.scale(3.0), np.diag([3.0, 3.0, 1.0]))
    np.testing.assert_allclose(T.apply_matrix(T.scale(2.0, 0.5, center=(4, 6)), [[4.0, 6.0], [5.0, 7.0]]),
                               [[4.0, 6.0], [6.0, 6.5]])
    np.testing.assert_array_equal(T.translate(3, -4), [[1, 0, 3], [0, 1, -4], [0, 0, 1]])
    for deg, c in ((30.0, (0.0, 0.0)), (-70.0, (3.0, 4.5))):
        np.testing.assert_allclose(T.rotate(deg, c)[:2], cv2.getRotationMatrix2D(c, deg, 1.0), atol=1e-12)
        np.testing.assert_array_equal(T.rotate(deg, c)[2], [0, 0, 1])
    np.testing.assert_allclose(T.apply_matrix(T.shear(0, 45), [[1.0, 0.0]]), [[1.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(T.apply_matrix(T.shear(30, 0), [[0.0, 2.0]]), [[2 * math.tan(math.pi / 6), 2.0]])
    np.testing.assert_allclose(T.apply_matrix(T.shear(30, 0, center=(0, 2)), [[0.0, 2.0], [0.0, 3.0]]),
                               [[0.0, 2.0], [math.tan(math.pi / 6), 3.0]], atol=1e-12)


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


SQUARE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
THREE_COLLINEAR = [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]


@pytest.mark.parametrize("bad", [
    THREE_COLLINEAR,                                            # three collinear among four
    [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]],           # all collinear
    [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 1.0]],           # a duplicate: three distinct points
    [[5.0, 5.0]] * 4,                                           # all coincide
    [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [7.0, 4.0]],  # five points, all but one on a line
    [[10.0, 0.0], [0.0, 0.0], [3.0, 0.0], [3.0, 0.0], [3.0, 8.0]],  # extra point is an extreme one
])
@pytest.mark.parametrize("side", ["src", "dst"])
def test_fit_projective_refuses_degenerate_point_sets_on_either_side(bad, side):
    good = np.array(SQUARE + [[0.5, 0.25]] * (len(bad) - 4)) * 3.0 + 2.0
    good[4:] += np.arange(len(bad) - 4)[:, None] * [0.3, 0.1]
    src, dst = (bad, good) if side == "src" else (good, bad)
    with pytest.raises(stntool.DegenerateError, match="source" if side == "src" else "destination"):
        stntool.fit_projective(src, dst)


def test_fit_projective_three_collinear_destination_reproduction():
    # the fit used to return a singular matrix sending (0, 1) to infinity
    with pytest.raises(stntool.DegenerateError, match="no three collinear"):
        T.fit_projective(SQUARE, THREE_COLLINEAR)


def test_fit_projective_singular_fit_is_refused_even_without_the_point_check(monkeypatch):
    # the last line of defence: a numerically singular fitted matrix is never returned
    monkeypatch.setattr(T, "_lacks_projective_frame", lambda p: None)
    for src, dst in [(SQUARE, THREE_COLLINEAR), (THREE_COLLINEAR, SQUARE)]:
        with pytest.raises(stntool.DegenerateError, match="singular|unique|infinity"):
            T.fit_projective(src, dst)


def test_fit_projective_accepts_frames_with_extra_collinear_points():
    # two lines with two points each off their crossing form a frame; three collinear among
    # five is fine when a frame exists
    h = np.array([[1.2, 0.1, -3.0], [0.05, 0.9, 2.0], [2e-3, -1e-3, 1.0]])
    src = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [1.0, 2.0]]) * 10
    dst = T.apply_matrix(h, src)
    np.testing.assert_allclose(T.fit_projective(src, dst), h, atol=1e-9)


@pytest.mark.parametrize("bad", [
    [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]],
    [[3.0, 3.0], [3.0, 3.0], [3.0, 3.0], [3.0, 3.0]],
])
def test_fit_affine_refuses_collinear_points_on_either_side(bad):
    good = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0], [3.0, 3.0]])[:len(bad)]
    with pytest.raises(stntool.DegenerateError, match="source points are collinear"):
        stntool.fit_affine(bad, good)
    with pytest.raises(stntool.DegenerateError, match="destination points are collinear"):
        stntool.fit_affine(good, bad)


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e9, -1e10])
def test_fit_affine_judges_collinearity_by_the_points_spread_wherever_they_lie(offset):
    """A unit triangle 1e9 px from the origin spans the plane as at the origin (its tolerance once scaled with
    the coordinates' size, so it was called collinear); points on a line far out are still refused."""
    m = T.translate(3, -2) @ T.rotate(20) @ T.scale(1.5, 0.8)
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) + offset
    fitted = stntool.fit_affine(tri, T.apply_matrix(m, tri))
    np.testing.assert_allclose(fitted[:2, :2], m[:2, :2], atol=1e-4)  # differences of coordinates near 1e10
    line = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 6.0]]) + offset  # exactly on one line
    with pytest.raises(stntool.DegenerateError, match="source points are collinear"):
        stntool.fit_affine(line, T.apply_matrix(m, tri))


def _has_frame_brute_force(points):
    """Exact oracle on integer points: some four of them have no three collinear."""
    import itertools

    pts = [tuple(p) for p in points]

    def collinear(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) == 0

    return any(not any(collinear(*t) for t in itertools.combinations(four, 3))
               for four in itertools.combinations(pts, 4))


def test_projective_frame_check_matches_brute_force_on_lattice_points():
    # small subsets of a 4x4 lattice are full of collinear triples, duplicates and near-pencils
    rng = np.random.default_rng(11)
    lattice = np.array([(x, y) for x in range(4) for y in range(4)])
    seen = {True: 0, False: 0}
    for _ in range(400):
        pts = lattice[rng.integers(0, len(lattice), rng.integers(4, 8))]
        expected = _has_frame_brute_force(pts)
        seen[expected] += 1
        assert (T._lacks_projective_frame(pts.astype(float) * 7.5 - 3.0) is None) == expected, pts.tolist()
    assert min(seen.values()) > 50


SINGULAR_MAPS = {
    "zero": np.zeros((2, 3)),
    "rank-one affine": np.array([[1.0, 2.0, 5.0], [2.0, 4.0, -1.0]]),
    "rank-two projective": np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]]),
    "flattened by a tiny factor": np.array([[1.0, 0.0, 0.0], [0.0, 1e-14, 0.0], [0.0, 0.0, 1.0]]),
}


@pytest.mark.parametrize("name", sorted(SINGULAR_MAPS))
def test_every_inversion_raises_degenerate_error_for_a_singular_matrix(name):
    m = SINGULAR_MAPS[name]
    # theta_from_pixel_map used to raise numpy.linalg.LinAlgError here, theta_from_cv2 DegenerateError
    with pytest.raises(stntool.DegenerateError, match="singular"):
        T.theta_from_pixel_map(m, (8, 10))
    with pytest.raises(stntool.DegenerateError, match="singular"):
        T.theta_from_cv2(m, (8, 10))
    with pytest.raises(stntool.DegenerateError, match="singular"):
        T.invert(m)
    with pytest.raises(stntool.DegenerateError, match="singular"):
        T.theta_to_cv2(m, (8, 10))              # θ itself singular: its forward matrix does not exist


def test_invert_names_the_singular_member_of_a_batch():
    batch = np.stack([np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), SINGULAR_MAPS["rank-one affine"]])
    with pytest.raises(stntool.DegenerateError, match="#1 of the batch"):
        T.invert(batch)


def test_singular_matrices_that_need_no_inverse_are_accepted():
    # pixel_map_from_theta and the inverse-map conversions only multiply: a singular θ is a valid
    # STN transform (the zero θ reads the input centre everywhere)
    zero = np.zeros((2, 3))
    np.testing.assert_allclose(T.pixel_map_from_theta(zero, (8, 10)),
                               [[0.0, 0.0, 4.5], [0.0, 0.0, 3.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(T.theta_to_cv2(zero, (8, 10), inverse_map=True),
                               [[0.0, 0.0, 4.5], [0.0, 0.0, 3.5]])
    np.testing.assert_allclose(T.theta_from_cv2([[0.0, 0.0, 4.5], [0.0, 0.0, 3.5]], (8, 10), inverse_map=True),
                               zero, atol=1e-15)
    img = np.arange(80, dtype=np.float64).reshape(8, 10)
    np.testing.assert_allclose(stntool.warp(img, zero, backend="numpy"), np.full((8, 10), img[3:5, 4:6].mean()))


def test_singularity_test_is_scale_free():
    # tiny or huge but well-conditioned maps invert; large pixel translations do not matter
    for m in [T.scale(1e-9), T.scale(1e9), T.compose(T.rotate(30), T.translate(1e7, -3e6)),
              np.array([[1e-8, 0.0, 0.0], [0.0, 1e-8, 0.0], [1e-9, 0.0, 1e-8]])]:
        prod = T.invert(m) @ m
        np.testing.assert_allclose(prod / prod[2, 2], np.eye(3), atol=1e-12 * max(1.0, np.abs(m).max()))
        T.theta_from_pixel_map(m, (8, 10))


def test_inversions_refuse_nan_as_invalid_argument():
    bad = np.array([[1.0, 0.0, np.nan], [0.0, 1.0, 0.0]])
    for call in (lambda: T.invert(bad), lambda: T.theta_from_pixel_map(bad, (4, 4)),
                 lambda: T.theta_from_cv2(bad, (4, 4)), lambda: T.theta_to_cv2(bad, (4, 4))):
        with pytest.raises(stntool.InvalidArgumentError):
            call()


def test_theta_to_cv2_keeps_a_projective_matrix_whose_corner_is_zero():
    # a forward homography sending pixel (0, 0) to infinity has m[2, 2] == 0: finite, not inf
    h = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 1.0], [0.01, 0.02, 0.0]])
    theta = T.theta_from_cv2(h, (8, 10))
    back = T.theta_to_cv2(theta, (8, 10))
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back / np.abs(back).max(), h / np.abs(h).max(), atol=1e-12)


def test_four_point_shortcut_agrees_with_the_general_frame_check(monkeypatch):
    """Quads with a point moved off the line of two others by 0 to 1e-3 of the extent: the four-point
    shortcut never changes the answer of the general test."""
    rng = np.random.default_rng(5)
    cases = []
    for off in (0.0, 1e-12, 1e-10, 1e-8, 1e-7, 1e-6, 1e-5, 1e-3):
        for _ in range(30):
            a, b, d = rng.random((3, 2)) * 100.0
            t = rng.random()
            normal = np.array([a[1] - b[1], b[0] - a[0]]) / np.hypot(*(b - a))
            cases.append(rng.permutation(np.array([a, b, a + t * (b - a) + off * 100.0 * normal, d])))
    fast = [T._lacks_projective_frame(p) for p in cases]
    monkeypatch.setattr(T, "_clearly_a_frame", lambda p, extent: False)
    assert fast == [T._lacks_projective_frame(p) for p in cases]
    assert fast.count(None) > 60 and len(fast) - fast.count(None) > 60


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_theta_with_a_non_finite_value_is_refused(bad):
    for shape, at in (((2, 3), (1, 2)), ((3, 3), (2, 0)), ((4, 2, 3), (3, 0, 1))):
        t = np.zeros(shape)
        t[at] = bad
        with pytest.raises(stntool.InvalidArgumentError, match="NaN or infinity"):
            T.as_theta(t)


def test_finite_check_is_elementwise_where_the_sum_overflows():
    huge = np.array([[1e308, 1e308, 1e308], [1e308, 1e308, 0.0]])  # the sum is inf, every value finite
    assert T.all_finite(huge) and T.as_theta(huge) is not None
    assert not T.all_finite(np.array([np.inf, -np.inf]))  # the sum is NaN
    assert not T.all_finite(np.array([1e308, 1e308, np.nan]))
    assert T.all_finite(np.zeros((0, 3)))


@pytest.mark.parametrize("size", [1e-100, 1e-6, 1.0, 1e6, 1e16, 1e100])
def test_fits_recover_a_known_map_at_any_coordinate_size(size):
    # fit_affine solved [x y 1] as given: at 1e16 the constant column was cut off (translation 5e-34 for 4e16),
    # and at 1e-100 the points read as collinear (an absolute floor); fit_projective said "all points coincide"
    rng = np.random.default_rng(0)
    s = rng.random((7, 2)) * 10 * size
    m = np.array([[0.9, 0.1, 4 * size], [-0.2, 1.1, 7 * size], [0.0, 0.0, 1.0]])
    d = s @ m[:2, :2].T + m[:2, 2]
    got = T.fit_affine(s, d)
    assert np.allclose(got[:2, :2], m[:2, :2], rtol=1e-9, atol=0)
    assert np.allclose(got[:2, 2], m[:2, 2], rtol=1e-9, atol=0)
    p = m.copy()
    p[2, :2] = [0.01 / size, -0.02 / size]
    dp = s @ p[:2, :2].T + p[:2, 2]
    dp = dp / (s @ p[2, :2] + 1.0)[:, None]
    got = T.fit_projective(s, dp)
    assert np.allclose(got, p, rtol=1e-7, atol=0)
    with pytest.raises(T.DegenerateError, match="collinear"):
        T.fit_affine(s[:, :1] * [1, 2], d)


def test_fits_refuse_points_that_are_not_real_numbers():
    s = [[0, 0], [10, 0], [0, 10], [10, 10]]
    for bad in (np.array(s) + 1j, np.array(s, object), [["0", "0"], ["1", "0"], ["0", "1"], ["1", "1"]]):
        for fit in (T.fit_affine, T.fit_projective):
            with pytest.raises(InvalidArgumentError, match="real numbers|array of numbers"):
                fit(bad, s)
            with pytest.raises(InvalidArgumentError, match="real numbers|array of numbers"):
                fit(s, bad)


def test_pixel_map_builders_take_real_numbers_only():
    # T.rotate("30") raised TypeError, rotate(30, center=(1, 2, 3)) ValueError, rotate(nan) gave a NaN matrix
    calls = {"degrees": lambda v: T.rotate(v), "sx": lambda v: T.scale(v), "sy": lambda v: T.scale(2, v),
             "shx_degrees": lambda v: T.shear(v), "tx": lambda v: T.translate(v, 0), "width": lambda v: T.hflip(v),
             "center x": lambda v: T.rotate(30, center=(v, 2))}
    for name, call in calls.items():
        for bad in ("30", True, float("nan"), float("inf"), 10**400, 1 + 2j, [30]) + ((None,) if name != "sy" else ()):
            with pytest.raises(InvalidArgumentError, match=name):  # (sy None: sx again)
                call(bad)
        assert np.all(np.isfinite(call(np.float32(3))))
        assert np.array_equal(call(np.array(3.0)), call(3))
    for bad in ((1, 2, 3), 5, "xy"):
        with pytest.raises(InvalidArgumentError, match=r"center must be \(x, y\)"):
            T.rotate(30, center=bad)


@pytest.mark.parametrize("call", [
    lambda: T.theta_to_cv2([[2, 0, 0], [0, 1, 0]], (4, 4), inverse_map="False"),   # a true string
    lambda: T.theta_from_cv2([[2, 0, 0], [0, 1, 0]], (4, 4), inverse_map="no"),
    lambda: T.apply_matrix(np.stack([T.translate(10, 0), T.translate(0, 10)]), np.ones((2, 2))),  # a batch
    lambda: T.apply_matrix(np.eye(3), [1, 2, 3]),                                   # not (x, y) points
    lambda: T.apply_matrix(np.eye(3), 5),
    lambda: T.apply_matrix([[np.nan, 0, 0], [0, 1, 0]], [1, 2]),
    lambda: T.pixel_map_from_theta(np.eye(3)[:2] + 0.5j, (4, 4)),                  # the imaginary part dropped
    lambda: T.as_theta(np.eye(3, dtype=bool)),
    lambda: T.pixel_map_from_theta([["1", "0", "0"], ["0", "1", "0"]], (4, 4)),
    lambda: T.hflip(0), lambda: T.hflip(2.5), lambda: T.vflip(-3),
    lambda: T.to_3x3("abc"), lambda: T.to_3x3(np.eye(3, dtype=bool)[:2]),
    lambda: pixel_to_norm(5.0, (4, 4)), lambda: norm_to_pixel([[1, 2, 3]], (4, 4)),   # would broadcast to x and y
    lambda: pixel_to_norm([["1", "2"]], (4, 4)), lambda: norm_to_pixel([0.5 + 1j, 0], (4, 4)),
    lambda: stntool.tps_grid(np.zeros((4, 2)), (3, 5), regularization="1"),
    lambda: stntool.tps_grid(np.zeros((4, 2)), (3, 5), regularization=True),
])
def test_geometry_arguments_that_would_mislead_are_refused(call):
    with pytest.raises(InvalidArgumentError):
        call()


def test_geometry_arguments_still_taken():
    assert T.theta_to_cv2([[2, 0, 0], [0, 1, 0]], (4, 4), inverse_map=True).tolist() == [[2, 0, -1.5], [0, 1, 0]]
    assert T.theta_to_cv2([[2, 0, 0], [0, 1, 0]], (4, 4), inverse_map=np.False_).tolist() == [[0.5, 0, 0.75],
                                                                                             [0, 1, 0]]
    assert T.apply_matrix(T.translate(1, 2), [[0, 0], [1, 1]]).tolist() == [[1, 2], [2, 3]]
    assert T.apply_matrix(np.eye(3)[:2], (3, 4)).tolist() == [3, 4]
    assert T.hflip(np.int64(5))[0].tolist() == T.hflip(5.0)[0].tolist() == [-1, 0, 4]
    assert pixel_to_norm((1.5, 0.5), (4, 4)).tolist() == [0.0, -0.5]
    assert norm_to_pixel([[0, 0]], (4, 4)).tolist() == [[1.5, 1.5]]
    assert pixel_to_norm(np.zeros((0, 2), np.int32), (4, 4)).shape == (0, 2)
    assert stntool.tps_grid(np.zeros((4, 2)), (3, 5), regularization=np.float32(0.5)).shape == (3, 5, 2)
    assert stntool.tps_grid(np.zeros((0, 4, 2)), (3, 5)).shape == (0, 3, 5, 2)  # as affine_grid's empty batch
    assert stntool.affine_grid(np.zeros((0, 2, 3)), (3, 5)).shape == (0, 3, 5, 2)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270, -90, -450, 1e300, -1e300, 3.6e17])
def test_rotations_by_whole_quarter_turns_are_exact(degrees):
    """Exact signed permutations without negative zeros, also where the angle in radians is far from a multiple
    of pi/2 in floating point (1e300 degrees is a whole number of turns)."""
    k = int(degrees % 360 // 90)
    want = [[1, 0], [0, 1], [-1, 0], [0, -1]][k]
    m = T.rotate(degrees)
    assert m[:2, :2].tolist() == [[want[0], want[1]], [-want[1], want[0]]]
    assert not np.any(np.signbit(m) & (m == 0))
