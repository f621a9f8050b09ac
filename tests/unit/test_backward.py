"""Bilinear backward (STN eqs. 6-7) against float64 finite differences."""

import numpy as np
import pytest

import stntool
from stntool.sampling import _reference

EPS = 1e-6


def _loss(img, grid, gout, padding, ac):
    out = _reference.grid_sample_float64(img, grid, "bilinear", padding, ac)
    return float((out * gout).sum())


def _central_differences(loss, x):
    """``d loss / d x`` by central differences of step :data:`EPS`, element by element."""
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += EPS
        xm[idx] -= EPS
        num[idx] = (loss(xp) - loss(xm)) / (2 * EPS)
    return num


def _grid_away_from_kinks(rng, n, ho, wo, h, w, ac):
    # keep pixel coordinates away from integers and from the clipping limits so the loss is smooth
    x = rng.uniform(-1.3, w + 0.3, (n, ho, wo))
    y = rng.uniform(-1.3, h + 0.3, (n, ho, wo))
    x = np.floor(x) + rng.uniform(0.1, 0.9, x.shape)
    y = np.floor(y) + rng.uniform(0.1, 0.9, y.shape)
    if ac:
        gx, gy = x / (w - 1) * 2 - 1, y / (h - 1) * 2 - 1
    else:
        gx, gy = (2 * x + 1) / w - 1, (2 * y + 1) / h - 1
    return np.stack([gx, gy], -1)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("ac", [False, True])
def test_grid_sample_backward_matches_finite_differences(rng, backend, padding, ac):
    h, w, c = 5, 6, 2
    img = rng.random((2, h, w, c))
    grid = _grid_away_from_kinks(rng, 2, 3, 4, h, w, ac)
    gout = rng.normal(size=(2, 3, 4, c))
    gi, gg = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend=backend)
    num_gg = np.zeros_like(grid)
    for idx in np.ndindex(grid.shape):
        gp, gm = grid.copy(), grid.copy()
        gp[idx] += EPS
        gm[idx] -= EPS
        num_gg[idx] = (_loss(img, gp, gout, padding, ac) - _loss(img, gm, gout, padding, ac)) / (2 * EPS)
    np.testing.assert_allclose(gg, num_gg, atol=1e-6, rtol=1e-6)
    # the loss is linear in the image: d loss / d img[idx] equals the loss of a unit image
    num_gi = np.zeros_like(img)
    for idx in np.ndindex(img.shape):
        e = np.zeros_like(img)
        e[idx] = 1.0
        num_gi[idx] = _loss(e, grid, gout, padding, ac)
    np.testing.assert_allclose(gi, num_gi, atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("fill", [0.7, [0.7, -2.5]])
@pytest.mark.parametrize("ac", [False, True])
def test_constant_padding_gradient_counts_the_fill(rng, backend, fill, ac):
    """Taps outside the image read the fill, so near the edges the grid's gradient depends on it; the backward
    functions had no ``fill`` and differentiated constant padding as fill 0."""
    h, w, c = 5, 6, 2
    img = rng.random((2, h, w, c))
    grid = _grid_away_from_kinks(rng, 2, 5, 6, h, w, ac)
    gout = rng.normal(size=(2, 5, 6, c))

    def loss(g):
        out = _reference.grid_sample_float64(img, g, "bilinear", "constant", ac, np.broadcast_to(fill, (c,)))
        return float((out * gout).sum())

    gi, gg = stntool.grid_sample_backward(img, grid, gout, "constant", ac, backend=backend, fill=fill)
    np.testing.assert_allclose(gg, _central_differences(loss, grid), atol=1e-6, rtol=1e-6)
    _, g0 = stntool.grid_sample_backward(img, grid, gout, "constant", ac, backend=backend)
    assert np.abs(g0 - gg).max() > 0.1  # points straddle the edges: the fill matters there
    zi, _ = stntool.grid_sample_backward(img, grid, gout, "zeros", ac, backend=backend)
    np.testing.assert_allclose(gi, zi, atol=1e-12)  # the image's gradient does not depend on the fill
    theta = np.array([[1.3, 0.2, 0.1], [-0.15, 1.2, -0.05]])
    one = img[0]

    def theta_loss(t):
        out = stntool.warp(one, t, padding="constant", fill=fill, backend="numpy")
        return float((out * gout[0]).sum())

    _, gt = stntool.warp_backward(one, theta, gout[0], padding="constant", fill=fill, backend=backend)
    np.testing.assert_allclose(gt, _central_differences(theta_loss, theta), atol=1e-5, rtol=1e-5)


def test_cpu_backward_matches_reference_and_is_deterministic(rng):
    img = rng.random((3, 9, 11, 3)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (3, 7, 8, 2))
    grid[0, 0, 0] = np.nan
    gout = rng.normal(size=(3, 7, 8, 3))
    for padding in ("zeros", "border", "reflection"):
        for ac in (False, True):
            a = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend="cpu")
            b = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend="numpy")
            np.testing.assert_allclose(a[0], b[0], atol=1e-12)
            np.testing.assert_allclose(a[1], b[1], atol=1e-10)
            again = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend="cpu")
            assert np.array_equal(a[0], again[0]) and np.array_equal(a[1], again[1])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("ac", [False, True])
def test_a_coordinate_past_float64_in_pixels_fills_and_has_no_gradient(backend, padding, ac):
    # 1.7e308 is finite, but not once in pixels: the forward pass reads the fill there, and the backward
    # pass gives it no gradient and the image none from it (the other point's are untouched)
    img = np.arange(12.0).reshape(3, 4)
    grid = np.array([[[1.7e308, 0.0], [0.1, -0.2]]])
    gout = np.ones((1, 2))
    out = stntool.grid_sample(img, grid, padding=padding, align_corners=ac, backend=backend)
    gi, gg = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend=backend)
    ref_out = stntool.grid_sample(img, grid[:, 1:], padding=padding, align_corners=ac, backend=backend)
    ref_gi, ref_gg = stntool.grid_sample_backward(img, grid[:, 1:], gout[:, 1:], padding, ac, backend=backend)
    assert out[0, 0] == 0.0 and out[0, 1] == ref_out[0, 0]
    assert np.array_equal(gg[0, 0], [0.0, 0.0]) and np.array_equal(gg[0, 1], ref_gg[0, 0])
    assert np.array_equal(gi, ref_gi)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_taps_outside_the_image_take_no_part_in_the_grid_gradient_even_against_a_non_finite_grad(backend):
    # PyTorch adds a tap's term only inside the image: an infinite grad_out at a point with a tap outside
    # gives infinite grid gradients, and one at a point wholly outside gives 0; the reference multiplied the
    # outside taps' zeros by it (0 * inf: NaN) where the kernels and PyTorch do not
    import warnings

    img = np.array([[1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" from forming 0 * inf
        _, gg = stntool.grid_sample_backward(img, np.array([[[-0.9, 0.0], [0.3, 0.0]]]), np.array([[np.inf, 1.0]]),
                                             backend=backend)
        assert gg.tolist() == [[[np.inf, -np.inf], [1.5, -1.225]]]
        for bad in (np.nan, np.inf):
            gi, gg = stntool.grid_sample_backward(img, np.array([[[5.0, 0.0]]]), np.array([[bad]]), backend=backend)
            assert gg.tolist() == [[[0.0, 0.0]]] and gi.tolist() == [[0.0, 0.0, 0.0]]
    torch = pytest.importorskip("torch")
    g = torch.tensor([[[[-0.9, 0.0], [0.3, 0.0]]]], requires_grad=True)
    out = torch.nn.functional.grid_sample(torch.tensor([[[[1.0, 2.0, 3.0]]]], dtype=torch.float64), g.double(),
                                          align_corners=False)
    out.backward(torch.tensor([[[[np.inf, 1.0]]]], dtype=torch.float64))
    assert np.allclose(g.grad.numpy()[0], [[[np.inf, -np.inf], [1.5, -1.225]]])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize("n", [1, 5])  # the CPU backend splits one image's rows into 4 tasks, 5 images into 5
def test_without_the_image_gradient_the_grid_gradient_keeps_its_bits(rng, backend, n):
    img = rng.random((n, 9, 11, 3)).astype(np.float32)
    grid = rng.uniform(-1.2, 1.2, (n, 7, 8, 2))
    grid[0, 0, 0] = np.nan
    gout = rng.normal(size=(n, 7, 8, 3))
    for padding in ("zeros", "border", "reflection"):
        for ac in (False, True):
            gi, gg = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend=backend)
            none, only = stntool.grid_sample_backward(img, grid, gout, padding, ac, backend=backend,
                                                      input_grad=False)
            assert none is None and gi.shape == img.shape and np.any(gi != 0)
            assert only.shape == gg.shape and np.array_equal(only, gg, equal_nan=True)
    # one (H, W, 2) grid for an (H, W) image, and warp_backward's θ
    none, only = stntool.grid_sample_backward(img[0, ..., 0], grid[0], gout[0, ..., 0], backend=backend,
                                              input_grad=False)
    assert none is None and np.array_equal(only, stntool.grid_sample_backward(
        img[0, ..., 0], grid[0], gout[0, ..., 0], backend=backend)[1], equal_nan=True)
    theta = [[0.9, -0.2, 0.05], [0.25, 0.85, -0.1]]
    gi, gt = stntool.warp_backward(img[0], theta, gout[0], out_hw=(7, 8), backend=backend)
    none, only = stntool.warp_backward(img[0], theta, gout[0], out_hw=(7, 8), backend=backend, input_grad=False)
    assert none is None and gi is not None and np.array_equal(only, gt)


@pytest.mark.parametrize("ac", [False, True])
def test_theta_gradient_matches_finite_differences(rng, ac):
    img = rng.random((7, 8, 2))
    theta = np.array([[0.9, 0.13, 0.0537], [-0.11, 1.05, 0.0213]])
    gout = rng.normal(size=(6, 5, 2))
    pix = stntool.coords.norm_to_pixel(stntool.affine_grid(theta, (6, 5), ac), (7, 8), ac)
    assert np.abs(pix - np.round(pix)).min() > 1e-3  # no sample sits on a kink of the bilinear loss

    def loss(t):
        return float((stntool.warp(img, t, (6, 5), align_corners=ac, backend="numpy") * gout).sum())

    gi, gt = stntool.warp_backward(img, theta, gout, (6, 5), align_corners=ac, backend="cpu")
    np.testing.assert_allclose(gt, _central_differences(loss, theta), atol=1e-5, rtol=1e-5)
    assert gi.shape == img.shape


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_one_theta_for_a_batch_gets_the_batch_loss_gradient(rng, backend):
    # one θ (or grid) sampling N images is one parameter: its gradient is the sum over the batch, as autograd
    # sums a broadcast tensor's (the first image's alone came back)
    imgs = rng.random((3, 7, 8, 2))
    theta = np.array([[0.9, 0.13, 0.0537], [-0.11, 1.05, 0.0213]])
    gout = rng.normal(size=(3, 6, 5, 2))

    def loss(t):
        return float((stntool.warp(imgs, t, (6, 5), backend="numpy") * gout).sum())

    num = _central_differences(loss, theta)
    for t in (theta, theta[None]):  # the gradient has θ's own shape
        gi, gt = stntool.warp_backward(imgs, t, gout, (6, 5), backend=backend)
        assert gt.shape == t.shape and gi.shape == imgs.shape
        np.testing.assert_allclose(gt.reshape(2, 3), num, atol=1e-5, rtol=1e-5)
        none, only = stntool.warp_backward(imgs, t, gout, (6, 5), backend=backend, input_grad=False)
        assert none is None and np.array_equal(only, gt)
    grid = stntool.affine_grid(theta, (6, 5))
    per_image = sum(stntool.grid_sample_backward(imgs[k], grid, gout[k], backend=backend)[1] for k in range(3))
    for g in (grid, grid[None]):
        _, gg = stntool.grid_sample_backward(imgs, g, gout, backend=backend)
        assert gg.shape == g.shape
        np.testing.assert_allclose(gg.reshape(per_image.shape), per_image, atol=1e-12)


def test_tps_control_point_gradient_matches_finite_differences(rng):
    img = rng.random((9, 10, 1))
    dst = stntool.tps.regular_control_points(3)
    src = dst * 0.9 + rng.normal(0, 0.03, dst.shape)
    gout = rng.normal(size=(6, 7, 1))

    def loss(s):
        g = stntool.tps_grid(s, (6, 7), dst)
        return float((stntool.grid_sample(img, g, backend="numpy") * gout).sum())

    grid = stntool.tps_grid(src, (6, 7), dst)
    _, gg = stntool.grid_sample_backward(img, grid, gout, backend="cpu")
    gsrc = stntool.tps_grid_backward(gg, dst, (6, 7))
    np.testing.assert_allclose(gsrc, _central_differences(loss, src), atol=1e-5, rtol=1e-5)
    from stntool.errors import InvalidArgumentError

    for wrong in ((7, 6), (3, 14), (2, 2)):  # the same pixel count swapped, and others: refused, not wrong numbers
        with pytest.raises(InvalidArgumentError, match="grad_grid is"):
            stntool.tps_grid_backward(gg, dst, wrong)


def test_affine_grid_backward_against_an_extended_precision_sum():
    """dL/dθ = Σ grad_grid ⊗ (x, y, 1) over the base grid, here in long double: batched and single, both
    align_corners; a grid gradient whose size is not out_hw is refused."""
    from stntool.errors import InvalidArgumentError
    from stntool.grids import out_norm_points

    rng = np.random.default_rng(3)
    for ac in (False, True):
        g = rng.standard_normal((2, 67, 45, 2))
        base = out_norm_points((67, 45), ac)
        hom = np.concatenate([base, np.ones((67, 45, 1))], -1).astype(np.longdouble)
        want = np.einsum("nhwi,hwk->nik", g.astype(np.longdouble), hom)
        got = stntool.affine_grid_backward(g, (67, 45), ac)
        assert got.shape == (2, 2, 3) and got.dtype == np.float64
        np.testing.assert_allclose(got, want.astype(np.float64), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(stntool.affine_grid_backward(g[1], None, ac), got[1])
    with pytest.raises(InvalidArgumentError, match="out_hw"):
        stntool.affine_grid_backward(np.zeros((4, 5, 2)), (5, 4))
