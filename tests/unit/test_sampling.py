"""Samplers: naive -> reference -> compiled kernels, and exact geometric oracles."""

import itertools

import numpy as np
import pytest

import naive
import stntool
from stn_testing import DTYPES, random_image
from stntool.sampling import _reference

MODES = ["nearest", "bilinear", "bicubic"]
PADDINGS = ["zeros", "border", "reflection", "constant"]
SIZES = [(1, 7), (7, 1), (5, 7)]


def _grid_with_specials(rng, n, ho, wo):
    g = rng.uniform(-1.6, 1.6, (n, ho, wo, 2))
    g[0, 0, 0] = [np.nan, 0.2]
    if wo > 1:
        g[0, 0, 1] = [0.1, np.inf]
    if ho > 1:
        g[0, 1, 0] = [1e30, -1e30]
    return g


@pytest.mark.parametrize("mode,padding,align_corners", itertools.product(MODES, PADDINGS, [False, True]))
@pytest.mark.parametrize("hw", SIZES)
def test_reference_matches_naive(rng, mode, padding, align_corners, hw):
    img = rng.random((2,) + hw + (2,))
    grid = _grid_with_specials(rng, 2, 4, 3)
    fill = 0.25 if padding == "constant" else None
    got = _reference.grid_sample_float64(img, grid, mode, padding, align_corners, fill)
    want = naive.grid_sample(img, grid, mode, "zeros" if padding == "constant" else padding, align_corners,
                             fill=fill or 0.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_naive_affine_grid_matches_stntool(rng):
    for ac in (False, True):
        for h, w in [(1, 1), (1, 5), (4, 1), (3, 6)]:
            th = rng.normal(size=(2, 3))
            np.testing.assert_allclose(stntool.affine_grid(th, (h, w), ac), naive.affine_grid(th, h, w, ac),
                                       atol=1e-14)


def _bound(dtype, mode):
    """Allowed |compiled - exact float64| for the dtype (integers: rounding plus fixed-point weights)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        return 0.5 + (np.iinfo(dtype).max * 2.0 ** -15 if (dtype == np.uint8 and mode == "bilinear") else 1e-6)
    return 1e-5 if dtype == np.float32 else 1e-7  # fixed-point coordinates carry 2**-32 px


def _check_against_exact(got, exact, dtype, mode):
    dtype = np.dtype(dtype)
    if dtype.kind == "u":
        exact = np.clip(exact, 0, np.iinfo(dtype).max)
    got = got.astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(exact))  # NaN exactly where the float64 reference has it
    same = (got == exact) | np.isnan(exact)  # infinities too
    err = np.where(same, 0.0, np.abs(got - exact))
    assert np.max(err) <= _bound(dtype, mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,padding,align_corners", itertools.product(MODES, PADDINGS, [False, True]))
def test_cpu_grid_sample_matches_reference(rng, dtype, mode, padding, align_corners):
    for hw in SIZES + [(6, 5)]:
        img = random_image(rng, (2,) + hw + (3,), dtype)
        grid = _grid_with_specials(rng, 2, 5, 4)
        fill = [3, 2, 1] if padding == "constant" else None
        exact = _reference.grid_sample_float64(img, grid, mode, padding, align_corners, fill)
        got = stntool.grid_sample(img, grid, mode, padding, align_corners, fill=fill, backend="cpu")
        ref = stntool.grid_sample(img, grid, mode, padding, align_corners, fill=fill, backend="numpy")
        assert got.dtype == img.dtype and got.shape == (2, 5, 4, 3)
        _check_against_exact(got, exact, dtype, mode)
        _check_against_exact(ref, exact, dtype, mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode,padding,align_corners", itertools.product(MODES, PADDINGS, [False, True]))
def test_cpu_fused_warp_matches_reference(rng, dtype, mode, padding, align_corners):
    for hw in SIZES + [(9, 8)]:
        img = random_image(rng, hw + (4,), dtype)
        fill = 9 if padding == "constant" else None
        affine = np.array([[0.9, 0.35, 0.1], [-0.3, 1.2, -0.05]]) + rng.normal(0, 0.2, (2, 3))
        projective = np.vstack([affine, [0.15, -0.1, 1.0]])
        for theta in (affine, projective):
            grid = stntool.theta_grid(theta, (7, 11), align_corners)
            exact = _reference.grid_sample_float64(img.reshape((1,) + img.shape), grid[None], mode, padding,
                                                   align_corners, fill)[0]
            got = stntool.warp(img, theta, (7, 11), mode, padding, align_corners, fill=fill, backend="cpu")
            ref = stntool.warp(img, theta, (7, 11), mode, padding, align_corners, fill=fill, backend="numpy")
            _check_against_exact(got, exact, dtype, mode)
            _check_against_exact(ref, exact, dtype, mode)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_uint8_bilinear_is_exact_rounding(rng, backend):
    # every output within half a grey level (plus fixed-point weights) of the float64 value: no 5-bit weights
    img = random_image(rng, (40, 50, 3), np.uint8)
    theta = [[0.93, 0.21, 0.03], [-0.17, 1.07, 0.02]]
    got = stntool.warp(img, theta, backend=backend)
    exact = stntool.warp(img.astype(np.float64), theta, backend="numpy")
    assert np.abs(got - exact).max() <= 0.5 + 255 * 2.0 ** -15


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_bicubic_saturates_instead_of_wrapping(backend):
    img = np.zeros((8, 8), np.uint8)
    img[:, 4:] = 255
    out = stntool.warp(img, [[0.97, 0, 0.01], [0, 1, 0]], mode="bicubic", backend=backend)
    exact = stntool.warp(img.astype(np.float64), [[0.97, 0, 0.01], [0, 1, 0]], mode="bicubic", backend="numpy")
    assert exact.max() > 255 and exact.min() < 0  # overshoot exists ...
    np.testing.assert_array_equal(out, np.clip(np.floor(exact + 0.5), 0, 255).astype(np.uint8))  # ... and saturates


# --------------------------------------------------------------------------- exact oracles

ORACLE_DTYPES = [np.uint8, np.uint16, np.float32]


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("dtype", ORACLE_DTYPES)
def test_identity_flips_rot90(rng, backend, mode, align_corners, dtype):
    img = random_image(rng, (5, 7, 3), dtype)
    kw = dict(mode=mode, align_corners=align_corners, backend=backend)
    np.testing.assert_array_equal(stntool.warp(img, [[1, 0, 0], [0, 1, 0]], **kw), img)
    np.testing.assert_array_equal(stntool.warp(img, np.eye(3), **kw), img)
    np.testing.assert_array_equal(stntool.warp(img, [[-1, 0, 0], [0, 1, 0]], **kw), img[:, ::-1])
    np.testing.assert_array_equal(stntool.warp(img, [[1, 0, 0], [0, -1, 0]], **kw), img[::-1])
    # quarter turn: output (x, y) reads input (y, -x) in normalized units when the aspect swaps
    sq = random_image(rng, (6, 6, 2), dtype)
    quarter = stntool.transforms.theta_from_pixel_map(stntool.transforms.rotate(90, center=(2.5, 2.5)), (6, 6),
                                                      align_corners=align_corners)
    np.testing.assert_array_equal(stntool.warp(sq, quarter, **kw), np.rot90(sq))
    wide = random_image(rng, (4, 7), dtype)
    m = stntool.transforms.compose(stntool.transforms.rotate(90), stntool.transforms.translate(0, 6))
    theta = stntool.transforms.theta_from_pixel_map(m, (4, 7), (7, 4), align_corners)
    np.testing.assert_array_equal(stntool.warp(wide, theta, (7, 4), **kw), np.rot90(wide))


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ORACLE_DTYPES)
def test_integer_shift_equals_slicing(rng, backend, mode, dtype):
    img = random_image(rng, (9, 11, 3), dtype)
    theta = stntool.transforms.theta_from_pixel_map(stntool.transforms.translate(-2, -3), (9, 11))
    out = stntool.warp(img, theta, mode=mode, padding="zeros", backend=backend)
    np.testing.assert_array_equal(out[:-3 - (mode == "bicubic"), :-2 - (mode == "bicubic")],
                                  img[3:9 - (mode == "bicubic"), 2:11 - (mode == "bicubic")])
    assert not out[-1].any() and not out[:, -1].any()
    border = stntool.warp(img, theta, mode=mode, padding="border", backend=backend)
    np.testing.assert_array_equal(border[:-3, :-2], img[3:, 2:])
    np.testing.assert_array_equal(border[-1, :-2], img[-1, 2:])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("padding", PADDINGS)
def test_points_exactly_on_the_far_edges(backend, mode, padding, rng):
    # pixel coordinates exactly -1, W-1, W (and H) hit every tap-bounds branch
    img = random_image(rng, (4, 6, 3), np.uint8)
    h, w = 4, 6
    px = np.array([-1.0, 0.0, w - 1.0, float(w), -2.0, w + 1.0])
    py = np.array([-1.0, h - 1.0, float(h), 0.0, float(h), -1.0])
    xx, yy = np.meshgrid(px, py)
    grid = np.stack([(2 * xx + 1) / w - 1, (2 * yy + 1) / h - 1], -1)
    fill = [1, 2, 3] if padding == "constant" else None
    exact = _reference.grid_sample_float64(img[None], grid[None], mode, padding, False, fill)[0]
    got = stntool.grid_sample(img, grid, mode, padding, fill=fill, backend=backend)
    assert np.abs(got - np.clip(exact, 0, 255)).max() <= 0.5 + 1e-6
    shifted = stntool.transforms.theta_from_pixel_map(stntool.transforms.translate(3, -2), (h, w))
    got = stntool.warp(img, shifted, mode=mode, padding=padding, fill=fill, backend=backend)
    want = stntool.warp(img, shifted, mode=mode, padding=padding, fill=fill, backend="numpy")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_nan_grid_gives_fill(backend):
    img = np.full((3, 4, 2), 50, np.uint8)
    grid = np.zeros((2, 2, 2))
    grid[0, 0] = np.nan
    grid[1, 1, 1] = -np.inf
    for padding in PADDINGS:
        fill = [7, 8] if padding == "constant" else None
        out = stntool.grid_sample(img, grid, padding=padding, fill=fill, backend=backend)
        want = [7, 8] if padding == "constant" else [0, 0]
        np.testing.assert_array_equal(out[0, 0], want)
        np.testing.assert_array_equal(out[1, 1], want)
        np.testing.assert_array_equal(out[0, 1], [50, 50])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_batches_take_per_image_theta(rng, backend):
    imgs = random_image(rng, (3, 6, 8, 3), np.float32)
    thetas = np.stack([np.eye(3)[:2], [[-1, 0, 0], [0, 1, 0]], [[1, 0, 0], [0, -1, 0]]])
    out = stntool.warp(imgs, thetas, backend=backend)
    np.testing.assert_array_equal(out[0], imgs[0])
    np.testing.assert_array_equal(out[1], imgs[1, :, ::-1])
    np.testing.assert_array_equal(out[2], imgs[2, ::-1])
    one = stntool.warp(imgs[0], thetas, backend=backend)  # one image, three θ
    assert one.shape == (3, 6, 8, 3)


def test_layouts_and_dtypes_are_kept(rng):
    for shape in [(5, 6), (5, 6, 1), (5, 6, 3), (2, 5, 6, 4)]:
        for dtype in DTYPES:
            img = random_image(rng, shape, dtype)
            out = stntool.warp(img, [[1, 0, 0], [0, 1, 0]], out_hw=(4, 3), backend="cpu")
            assert out.dtype == img.dtype
            assert out.shape == shape[:-2] + (4, 3) if len(shape) == 2 else out.shape[-3:-1] == (4, 3)


def test_bad_arguments_raise_clear_errors():
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(stntool.InvalidArgumentError, match="mode"):
        stntool.warp(img, np.eye(3), mode="lanczos")
    with pytest.raises(stntool.InvalidArgumentError, match="padding"):
        stntool.warp(img, np.eye(3), padding="wrap")
    with pytest.raises(stntool.InvalidArgumentError, match="NaN"):
        stntool.warp(img, [[np.nan, 0, 0], [0, 1, 0]])
    with pytest.raises(stntool.InvalidArgumentError, match="shape"):
        stntool.warp(img, [1, 2, 3])
    with pytest.raises(stntool.InvalidArgumentError, match="dtype"):
        stntool.warp(img.astype(np.int32), np.eye(3))
    with pytest.raises(stntool.InvalidArgumentError, match="fill"):
        stntool.warp(img, np.eye(3), fill=3)
    with pytest.raises(stntool.InvalidArgumentError, match="backend"):
        stntool.warp(img, np.eye(3), backend="gpu")


def test_explicit_cuda_without_gpu_is_an_error(monkeypatch):
    monkeypatch.setenv("STNTOOL_DISABLE_CUDA", "1")
    with pytest.raises(stntool.BackendUnavailableError):
        stntool.warp(np.zeros((4, 4), np.uint8), np.eye(3), backend="cuda")


@pytest.mark.parametrize("rows", [2, 3])
@pytest.mark.parametrize("align_corners", [False, True])
def test_theta_grid_is_the_base_grid_times_theta_in_its_stated_order(rows, align_corners):
    """Every grid point is row i of θ·(x, y, 1) summed as (x θ_i0 + θ_i2) + y θ_i1 in float64 (then divided
    by the third row for projective θ): bit for bit against the stacked base grid, and close to a
    matrix product (any order); batched and single θ, float32 θ giving float32 grids."""
    from stntool.grids import out_norm_points, theta_grid

    rng = np.random.default_rng(rows + 2 * align_corners)
    for h, w in [(1, 1), (1, 7), (5, 1), (37, 53), (128, 96)]:
        t = rng.standard_normal((3, rows, 3)) * [[1.0], [10.0], [0.01]][:rows]
        base = out_norm_points((h, w), align_corners)
        x, y = base[..., 0], base[..., 1]
        want = np.stack([(x[None] * t[:, i, 0, None, None] + t[:, i, 2, None, None]) + y[None] * t[:, i, 1, None, None]
                         for i in range(rows)], -1)
        hom = np.concatenate([base, np.ones((h, w, 1))], -1)
        product = hom @ np.swapaxes(t, -1, -2)[:, None]
        if rows == 3:
            with np.errstate(divide="ignore", invalid="ignore"):
                want = want[..., :2] / want[..., 2:3]
                product = product[..., :2] / product[..., 2:3]
        got = theta_grid(t, (h, w), align_corners)
        assert got.dtype == np.float64 and np.array_equal(got, want)
        np.testing.assert_allclose(got, product, rtol=1e-10, atol=1e-12)
        assert np.array_equal(theta_grid(t[1], (h, w), align_corners), want[1])
        g32 = theta_grid(t.astype(np.float32), (h, w), align_corners)
        assert g32.dtype == np.float32


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("fill", [127.5, 0.5, 254.5])
def test_far_outside_reads_the_fill_itself_in_the_reference_as_in_the_kernels(mode, fill):
    """A point whose taps all lie far outside the image reads the fill value, not the fill times the weights' sum:
    Keys' weights at x = -10.45 sum to 1 - 4e-16, and the reference rounded a fill of 127.5 to 127 where the
    compiled kernels wrote 128."""
    import stntool

    img = np.zeros((1, 1), np.uint8)
    theta = np.array([[1.0, 0, -20.9], [0, 1.0, 0]])  # reads x = -10.45 px
    ref = stntool.warp(img, theta, mode=mode, padding="constant", fill=fill, backend="numpy")
    cpu = stntool.warp(img, theta, mode=mode, padding="constant", fill=fill, backend="cpu")
    assert ref[0, 0] == cpu[0, 0] == int(fill + 0.5)
