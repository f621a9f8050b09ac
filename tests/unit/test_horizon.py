"""At a projective θ's horizon (w = 0) the fused warp reads what grid_sample(projective_grid(θ)) reads.

The grid divides by exactly 0 there and samples the fill value; the fused pixel matrix, composed
from θ and the normalization matrices, can round the same w to about 1e-16 and read a border or
reflected pixel instead. The cases put the horizon exactly through pixel centres.
"""

import numpy as np
import pytest

import stntool
from stntool.coords import base_coords
from stntool.transforms import pixel_map_from_theta

PADDINGS = ("zeros", "border", "reflection", "constant")


def _horizon_thetas(out_hw, align_corners):
    """θ whose horizon passes through output pixel centres: vertical, horizontal and oblique lines."""
    xs = base_coords(out_hw[1], align_corners)
    ys = base_coords(out_hw[0], align_corners)
    res = []
    for a in (0.3, 0.7, -0.9, 0.45):
        res.append([[1, 0.1, 0], [0.2, 1, 0], [a, 0, -a * xs[1]]])           # vertical: column 1
        res.append([[0.9, 0, 0.1], [0, 1.1, 0], [0, a, -a * ys[-2]]])         # horizontal: row H - 2
        res.append([[1, 0, 0], [0, 1, 0], [a, a, -a * (xs[2] + ys[1])]])      # oblique through (2, 1)
    return np.array(res, dtype=np.float64)


def _disagreeing(thetas, out_hw, align_corners):
    """How many θ would put some pixel on different sides of (or on) the horizon on the two paths."""
    ii, jj = np.meshgrid(np.arange(out_hw[0]), np.arange(out_hw[1]), indexing="ij")
    count = 0
    for t in thetas:
        m = pixel_map_from_theta(t, out_hw, out_hw, align_corners)
        q = m[2, 0] * jj + (m[2, 1] * ii + m[2, 2])  # the fused kernels' arithmetic
        g = stntool.projective_grid(t, out_hw, align_corners)
        count += bool(np.any(np.isfinite(g).all(-1) != (q != 0)))
    return count


@pytest.mark.parametrize("align_corners", [False, True])
def test_the_cases_exercise_the_rounding(align_corners):
    """Without the grid fallback several of these cases disagree (this test keeps the cases honest)."""
    out_hw = (7, 9)
    assert _disagreeing(_horizon_thetas(out_hw, align_corners), out_hw, align_corners) >= 3


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_fused_warp_equals_grid_path_on_the_horizon(backend, align_corners, padding, mode):
    out_hw = (7, 9)
    img = np.random.default_rng(2).uniform(10, 250, (6, 8, 3)).round().astype(np.uint8)
    fill = [1.0, 2.0, 3.0] if padding == "constant" else None
    exact = 0
    for t in _horizon_thetas(out_hw, align_corners):
        got = stntool.warp(img, t, out_hw, mode=mode, padding=padding, align_corners=align_corners, fill=fill,
                           backend=backend)
        grid = stntool.projective_grid(t, out_hw, align_corners)
        want = stntool.grid_sample(img, grid, mode=mode, padding=padding, align_corners=align_corners, fill=fill,
                                   backend=backend)
        np.testing.assert_array_equal(got, want)
        on_horizon = ~np.isfinite(grid).all(-1)  # w rounds to exactly 0 in the grid for most cases
        exact += bool(on_horizon.any())
        np.testing.assert_array_equal(got[on_horizon], np.broadcast_to(np.asarray(fill or 0.0, np.uint8),
                                                                       got[on_horizon].shape))
    assert exact >= 6


@pytest.mark.parametrize("align_corners", [False, True])
def test_batched_theta_with_one_horizon(align_corners):
    out_hw = (7, 9)
    img = np.random.default_rng(3).random((2, 6, 8, 1))
    t = np.stack([[[1.1, 0.1, 0], [0, 0.9, 0], [0.1, 0.05, 1]], _horizon_thetas(out_hw, align_corners)[0]])
    got = stntool.warp(img, t, out_hw, padding="border", align_corners=align_corners, backend="numpy")
    want = stntool.grid_sample(img, stntool.projective_grid(t, out_hw, align_corners), padding="border",
                               align_corners=align_corners, backend="numpy")
    np.testing.assert_array_equal(got, want)


def test_horizon_away_from_pixels_keeps_the_fused_path(monkeypatch):
    """A horizon between pixel centres, or outside the image, does not materialise a grid."""
    from stntool import api

    calls = []
    monkeypatch.setattr(api, "theta_grid", lambda *a, **k: calls.append(1))
    img = np.ones((6, 8))
    stntool.warp(img, [[1, 0, 0], [0, 1, 0], [0.5, 0.2, 0.013]], backend="numpy")   # crosses between centres
    stntool.warp(img, [[1, 0, 0], [0, 1, 0], [0.12, -0.2, 1.0]], backend="numpy")   # no horizon in view
    assert not calls


@pytest.mark.parametrize("align_corners", [False, True])
def test_horizon_check_agrees_with_every_pixel_centre(rng, align_corners):
    """The check (a quick test that the horizon stays clear of [-1, 1]², then the two centres nearest it along
    each line) finds exactly the θ whose w is within tolerance of 0 at some pixel centre: horizons through
    centres, between them, through the corners of the square and just outside it."""
    from stntool.api import _HORIZON_RTOL, _horizon_on_pixels

    out_hw = (7, 9)
    xs = base_coords(out_hw[1], align_corners)
    ys = base_coords(out_hw[0], align_corners)
    rows = []
    for _ in range(300):
        a, b = rng.uniform(-1, 1, 2) * (rng.random(2) < 0.8)
        x, y = (rng.choice(xs), rng.choice(ys)) if rng.random() < 0.5 else rng.uniform(-1.05, 1.05, 2)
        rows.append((a, b, -(a * x + b * y)))  # through (x, y): a centre, or any point near the square
    for sa in (-1, 1):
        for sb in (-1, 1):  # through a corner of the square, and a hair outside it
            for c in (-(sa * xs[-1] + sb * ys[-1]) * 0.5, -(sa + sb) * 0.5, -(sa + sb) * 0.5 * (1 + 1e-9)):
                rows.append((0.5 * sa, 0.5 * sb, c))
    for a, b, c in rows:
        t = np.array([[[1.0, 0, 0], [0, 1, 0], [a, b, c]]])
        w = a * xs[None, :] + (b * ys[:, None] + c)
        brute = (a != 0 or b != 0) and bool(np.any(np.abs(w) <= _HORIZON_RTOL * (abs(a) + abs(b) + abs(c))))
        assert _horizon_on_pixels(t, out_hw, align_corners) == brute, (a, b, c)
