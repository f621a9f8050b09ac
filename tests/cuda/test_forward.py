"""CUDA forward kernels against the NumPy reference, on tiny inputs spanning several blocks."""

import numpy as np
import pytest
from cuda_helpers import (DTYPES, MODES, PADDINGS, affine_maps, assert_matches, opts, random_image,
                          reference_warp_matrix)

from stntool.sampling import MODES as MODE_IDS
from stntool.sampling import PADDINGS as PAD_IDS
from stntool.sampling import _cuda
from stntool.sampling import _reference as ref


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
def test_warp_matrix_every_dtype(rng, mode, padding, align_corners):
    """Per-image affine maps, batch of 2, 5x7 input, 4x6 output, every dtype."""
    maps = affine_maps(rng, 2)
    for dtype in DTYPES:
        img = random_image(rng, (2, 5, 7, 3), dtype)
        is_int, maxv, fill, fill_ref = opts(dtype, 3, padding, rng)
        out = np.empty((2, 4, 6, 3), dtype)
        _cuda.warp_matrix(img, maps, out, MODE_IDS[mode], PAD_IDS[padding], align_corners, fill, is_int, maxv,
                          False)
        assert_matches(out, reference_warp_matrix(img, maps, out.shape, mode, padding, align_corners, fill_ref))


def grid_with_specials(rng, m, ho, wo, dtype=np.float64):
    """Normalized grid reaching well outside [-1, 1], with NaN, inf and exact half-pixel ties."""
    g = rng.uniform(-1.6, 1.6, (m, ho, wo, 2))
    g[0, 0, 0] = (np.nan, 0.0)
    g[0, 0, 1] = (0.2, np.inf)
    g[-1, -1, -1] = (-np.inf, np.nan)
    g[0, 1, 0] = (0.0, 0.0)  # a pixel-centre tie for even sizes
    g[0, 1, 1] = (1e30, -1e30)
    return g.astype(dtype)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
def test_sample_grid_every_dtype(rng, mode, padding, align_corners):
    """Per-image grids with NaN / inf / far-away points; float32 and float64 grids."""
    for k, dtype in enumerate(DTYPES):
        img = random_image(rng, (2, 5, 7, 2), dtype)
        grid = grid_with_specials(rng, 2, 3, 5, np.float32 if k % 2 else np.float64)
        is_int, maxv, fill, fill_ref = opts(dtype, 2, padding, rng)
        out = np.empty((2, 3, 5, 2), dtype)
        _cuda.sample_grid(img, grid, out, MODE_IDS[mode], PAD_IDS[padding], align_corners, fill, is_int, maxv)
        expected = ref.grid_sample(img, grid, mode, padding, align_corners, fill_ref)
        if padding == "reflection" and not _cuda._simulator_enabled():
            # reflecting x = 1e30 keeps fmod(x, span) of all of x's bits: a multiply-add contracted
            # on the GPU lands on another input pixel. Only the simulator is exact there.
            expected[0, 1, 1] = out[0, 1, 1]
        assert_matches(out, expected)
        # NaN / inf grid points give the fill value
        for n, i, j in ((0, 0, 0), (0, 0, 1), (1, 2, 4)):
            np.testing.assert_array_equal(out[n, i, j], ref.to_dtype(fill, dtype))


@pytest.mark.parametrize("mode", MODES)
def test_projective_and_one_map_for_a_batch(rng, mode):
    """A projective map whose horizon crosses the output (division by ~0 and negative depth)."""
    maps = np.array([[[1.0, 0.1, 0.5], [0.05, 0.9, -0.3], [0.25, -0.1, 0.4]]])
    img = random_image(rng, (3, 5, 7, 2), np.uint16)
    is_int, maxv, fill, _ = opts(np.uint16, 2, "zeros", rng)
    out = np.empty((3, 5, 7, 2), np.uint16)
    _cuda.warp_matrix(img, maps, out, MODE_IDS[mode], 0, False, fill, is_int, maxv, True)
    assert_matches(out, reference_warp_matrix(img, maps, out.shape, mode, "zeros", False, None))


@pytest.mark.parametrize("hw", [(1, 6), (6, 1), (1, 1)])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_degenerate_sizes(rng, hw, padding):
    """1xN, Nx1 and 1x1 images: reflection with align_corners has zero extent there."""
    img = random_image(rng, (1, hw[0], hw[1], 1), np.float64)
    for mode in ("nearest", "bilinear"):
        for align_corners in (False, True):
            grid = rng.uniform(-1.5, 1.5, (1, 2, 5, 2))
            out = np.empty((1, 2, 5, 1))
            _cuda.sample_grid(img, grid, out, MODE_IDS[mode], PAD_IDS[padding], align_corners, np.zeros(1), False,
                              0.0)
            assert_matches(out, ref.grid_sample(img, grid, mode, padding, align_corners))


@pytest.mark.parametrize("channels", [1, 2, 4, 5])
def test_channel_counts(rng, channels):
    maps = affine_maps(rng, 1)
    img = random_image(rng, (1, 5, 7, channels), np.uint8)
    is_int, maxv, fill, fill_ref = opts(np.uint8, channels, "constant", rng)
    out = np.empty((1, 5, 7, channels), np.uint8)
    _cuda.warp_matrix(img, maps, out, 1, 3, False, fill, is_int, maxv, False)
    assert_matches(out, reference_warp_matrix(img, maps, out.shape, "bilinear", "constant", False, fill_ref))


def test_integer_rounding_and_saturation():
    """Ties round half up; bicubic overshoot saturates at 0 and at the dtype maximum."""
    img = np.zeros((1, 1, 6, 1), np.uint8)
    img[0, 0, 3:] = 255
    img[0, 0, 1] = 1
    # x = j + 0.5: halfway between neighbours
    maps = np.array([[[1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])
    out = np.empty((1, 1, 5, 1), np.uint8)
    _cuda.warp_matrix(img, maps, out, 1, 1, False, np.zeros(1), True, 255.0, False)
    assert out[0, 0, :, 0].tolist() == [1, 1, 128, 255, 255]  # 0.5 -> 1, 127.5 -> 128
    _cuda.warp_matrix(img, maps, out, 2, 1, False, np.zeros(1), True, 255.0, False)
    assert_matches(out, reference_warp_matrix(img, maps, out.shape, "bicubic", "border", False, None))
    grid = np.array([[[[-1.0 + 2 * 2.75 / 6 + 1 / 6, 0.0]]]])  # near the step: overshoot below 0
    cubic = np.empty((1, 1, 1, 1), np.float64)
    _cuda.sample_grid(img.astype(np.float64), grid, cubic, 2, 1, False, np.zeros(1), False, 0.0)
    sat = np.empty((1, 1, 1, 1), np.uint8)
    _cuda.sample_grid(img, grid, sat, 2, 1, False, np.zeros(1), True, 255.0)
    assert sat[0, 0, 0, 0] == np.clip(np.floor(cubic[0, 0, 0, 0] + 0.5), 0, 255)


def test_grid_stride_loops_cover_everything(rng, monkeypatch):
    """Fewer threads than pixels: every pixel is still written (grid-stride loops)."""
    monkeypatch.setattr(_cuda, "MAX_BLOCKS", 2)
    assert _cuda._launch_geometry(10_000) == (2, 4)
    img = random_image(rng, (2, 5, 7, 3), np.float32)
    maps = affine_maps(rng, 2)
    out = np.full((2, 5, 7, 3), np.nan, np.float32)
    _cuda.warp_matrix(img, maps, out, 1, 2, False, np.zeros(3), False, 0.0, False)
    assert_matches(out, reference_warp_matrix(img, maps, out.shape, "bilinear", "reflection", False, None))
    grid = rng.uniform(-1.2, 1.2, (2, 4, 6, 2))
    out = np.full((2, 4, 6, 3), np.nan, np.float32)
    _cuda.sample_grid(img, grid, out, 0, 0, True, np.zeros(3), False, 0.0)
    assert_matches(out, ref.grid_sample(img, grid, "nearest", "zeros", True))
    go = rng.standard_normal((2, 4, 6, 3))
    gi, gg = _cuda.grid_sample_backward(img.astype(np.float64), grid, go, 1, False, True)
    ri, rg = ref.grid_sample_backward_spec(img.astype(np.float64), grid, go, "border", False)
    np.testing.assert_allclose(gi, ri, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gg, rg, rtol=1e-12, atol=1e-12)


def test_launch_geometry_spans_blocks():
    assert _cuda._launch_geometry(35) == (9, 4)
    assert _cuda._launch_geometry(1) == (1, 4)


def test_small_launches_get_at_least_min_blocks(rng, monkeypatch):
    """Tiny outputs still launch MIN_BLOCKS blocks (numba-cuda warns below 128); the extra ones do nothing."""
    monkeypatch.setattr(_cuda, "MIN_BLOCKS", 7)
    assert _cuda._launch_geometry(1) == (7, 4)
    assert _cuda._launch_geometry(35) == (9, 4)
    img = random_image(rng, (2, 5, 7, 2), np.uint16)
    maps = affine_maps(rng, 2)
    out = np.zeros((2, 1, 3, 2), np.uint16)
    _cuda.warp_matrix(img, maps, out, 2, 0, False, np.zeros(2), True, 65535.0, False)
    assert_matches(out, reference_warp_matrix(img, maps, out.shape, "bicubic", "zeros", False, None))


def test_device_arrays_in_and_out(rng):
    """Inputs and ``out`` that already live on the device are used in place."""
    from numba import cuda

    img = random_image(rng, (1, 5, 7, 3), np.float32)
    grid = grid_with_specials(rng, 1, 4, 6, np.float32)
    d_img = cuda.to_device(img)
    d_grid = cuda.to_device(grid)
    d_out = cuda.device_array((1, 4, 6, 3), np.float32)
    res = _cuda.sample_grid(d_img, d_grid, d_out, 1, 0, False, np.zeros(3), False, 0.0)
    assert res is d_out
    assert_matches(d_out.copy_to_host(), ref.grid_sample(img, grid, "bilinear", "zeros", False))


@pytest.mark.parametrize("mode", MODES)
def test_warp_tps_lattice(rng, mode):
    """Fused TPS plan (Catmull-Rom lattice + exact radial terms near control points) against the reference."""
    import stntool

    h, w = 9, 11
    dst = np.array([[0, 0], [10, 0], [0, 8], [10, 8], [5, 4]], float)
    src = dst + rng.normal(0, 0.7, dst.shape)
    plan = stntool.tps_lattice._build_tps_plan(stntool.grids.make_tps(stntool.coords.pixel_to_norm(src, (h, w)),
                                                                      stntool.coords.pixel_to_norm(dst, (h, w))),
                                               (h, w), (h, w), False, 1e9, "numpy")
    assert plan.step > 1 and plan.radius > 0
    for dtype, padding in ((np.uint8, "zeros"), (np.float32, "reflection")):
        img = random_image(rng, (2, h, w, 2), dtype)
        is_int, maxv, fill, fill_ref = opts(dtype, 2, padding, rng)
        out = np.empty((2, h, w, 2), dtype)
        _cuda.warp_tps_lattice(img, plan.lattice, plan.step, plan.singular, plan.tables, plan.radius,
                               plan.norm_scale[0], plan.norm_scale[1], out, MODE_IDS[mode], PAD_IDS[padding], False,
                               fill, is_int, maxv)
        expected = np.empty_like(out)
        ref.warp_tps_lattice_spec(img, plan.lattice, plan.step, plan.singular, plan.tables, plan.radius,
                                  plan.norm_scale, expected, mode, padding, False, fill_ref)
        assert_matches(out, expected)


def _plan_case(rng, backend):
    import stntool

    h, w = 40, 52
    dst = np.array([[0, 0], [51, 0], [0, 39], [51, 39], [25, 20], [12, 30]], float)
    src = dst + rng.normal(0, 2.0, dst.shape)
    return stntool.tps_lattice._build_tps_plan(
        stntool.grids.make_tps(stntool.coords.pixel_to_norm(src, (h, w)), stntool.coords.pixel_to_norm(dst, (h, w))),
        (h, w), (h, w), False, 1e9, backend), (h, w)


def test_tps_plan_kernels_match_reference(rng):
    """The CUDA plan kernels (spline terms, plan at scattered pixels) against the NumPy kernel table."""
    import stntool

    tps = stntool.grids.make_tps(rng.uniform(-1, 1, (7, 2)), rng.uniform(-1, 1, (7, 2)))
    pts = rng.uniform(-1.3, 1.3, (37, 2))
    pts[3] = tps.centres[2]  # exactly on a centre: U(0) = 0
    args = (pts, np.ascontiguousarray(tps.centres), np.ascontiguousarray(tps.weights), np.ascontiguousarray(tps.affine))
    got = (np.empty((37, 2)), np.empty((37, 7)))
    want = (np.empty((37, 2)), np.empty((37, 7)))
    _cuda.tps_eval_terms(*args, *got)
    ref.tps_eval_terms(*args, *want)
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-12)
    assert got[1][3, 2] == 0.0

    plan, (h, w) = _plan_case(rng, "numpy")
    assert plan.step > 1 and plan.radius > 0
    js = np.concatenate([rng.integers(0, w, 60), np.round(plan.singular[:, 0]).astype(np.int64)])
    is_ = np.concatenate([rng.integers(0, h, 60), np.round(plan.singular[:, 1]).astype(np.int64)])
    js = np.clip(js, 0, w - 1)
    is_ = np.clip(is_, 0, h - 1)
    out = np.empty((len(js), 2))
    _cuda.tps_lattice_points(*plan.kernel_args(), js, is_, out)
    np.testing.assert_allclose(out, plan.points(js, is_), rtol=0, atol=1e-9)


def test_cuda_builds_its_own_plan(rng):
    """A plan built by the CUDA kernels equals the NumPy-built plan to rounding."""
    plan_cuda, _ = _plan_case(np.random.default_rng(5), "cuda")
    plan_ref, _ = _plan_case(np.random.default_rng(5), "numpy")
    assert plan_cuda.step == plan_ref.step
    np.testing.assert_allclose(plan_cuda.lattice, plan_ref.lattice, rtol=0, atol=1e-9)
    np.testing.assert_allclose(plan_cuda.tables, plan_ref.tables, rtol=0, atol=1e-9)
    assert abs(plan_cuda.max_error - plan_ref.max_error) < 1e-9
