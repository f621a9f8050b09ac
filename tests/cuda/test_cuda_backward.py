"""CUDA bilinear backward against the NumPy reference; determinism of the fixed-point scatter."""

import numpy as np
import pytest

from stntool.sampling import PADDINGS as PAD_IDS
from stntool.sampling import _cuda
from stntool.sampling import _reference as ref

# the simulator runs the kernels' float64 arithmetic in NumPy scalars, which warn where 1.7e308 overflows
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")


def _inputs(rng, n=2, h=5, w=7, c=2, ho=4, wo=6):
    img = rng.random((n, h, w, c)) * 2.0 - 1.0
    grid = rng.uniform(-1.4, 1.4, (n, ho, wo, 2))
    grid[0, 0, 0] = (np.nan, 0.1)
    grid[-1, 1, 1] = (0.3, np.inf)
    grid[0, 2, 3] = (0.0, 0.0)
    grid[-1, 3, 2] = (1.7e308, 0.2)  # finite, but past float64 once in pixels: no gradient, as NaN
    go = rng.standard_normal((n, ho, wo, c))
    return img, grid, go


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection", "constant"])
def test_backward_matches_reference(rng, padding, align_corners):
    img, grid, go = _inputs(rng)
    gi, gg = _cuda.grid_sample_backward(img, grid, go, PAD_IDS[padding], align_corners, True)
    ref_pad = "zeros" if padding == "constant" else padding
    ri, rg = ref.grid_sample_backward_spec(img, grid, go, ref_pad, align_corners)
    np.testing.assert_allclose(gi, ri, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gg, rg, rtol=1e-12, atol=1e-12)
    assert np.all(gg[0, 0, 0] == 0.0) and np.all(gg[1, 1, 1] == 0.0) and np.all(gg[1, 3, 2] == 0.0)


@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
def test_without_the_image_gradient_the_grid_gradient_keeps_its_bits(rng, padding):
    img, grid, go = _inputs(rng)
    gi, gg = _cuda.grid_sample_backward(img, grid, go, PAD_IDS[padding], True, True)
    none, only = _cuda.grid_sample_backward(img, grid, go, PAD_IDS[padding], True, False)
    assert none is None and gi is not None
    assert np.array_equal(only, gg)


def test_backward_is_deterministic(rng):
    """Many output pixels hitting few input pixels (a strong zoom-out) give bit-identical results."""
    img = rng.random((1, 3, 3, 1))
    grid = rng.uniform(-0.9, 0.9, (1, 6, 8, 2))
    go = rng.standard_normal((1, 6, 8, 1)) * 1e-3
    first = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
    for _ in range(2):
        again = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
        assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    ri, rg = ref.grid_sample_backward_spec(img, grid, go, "zeros", False)
    np.testing.assert_allclose(first[0], ri, rtol=1e-12, atol=1e-15)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_backward_nonfinite_grad_out(rng):
    """inf / NaN in grad_out reach the input pixels they touch, as in the reference."""
    img, grid, go = _inputs(rng, n=1)
    go[0, 1, 2, 0] = np.inf
    go[0, 3, 4, 1] = np.nan
    gi, gg = _cuda.grid_sample_backward(img, grid, go, 1, False, True)
    ri, rg = ref.grid_sample_backward_spec(img, grid, go, "border", False)
    np.testing.assert_allclose(gi, ri, rtol=1e-12, atol=1e-12)  # NaN where the reference has NaN
    np.testing.assert_allclose(gg, rg, rtol=1e-12, atol=1e-12)


def test_backward_zero_and_tiny_grad_out(rng):
    img, grid, go = _inputs(rng, n=1)
    gi, gg = _cuda.grid_sample_backward(img, grid, np.zeros_like(go), 0, False, True)
    assert not gi.any() and not gg.any()
    tiny = go * 1e-200
    gi, _ = _cuda.grid_sample_backward(img, grid, tiny, 0, False, True)
    ri, _ = ref.grid_sample_backward_spec(img, grid, tiny, "zeros", False)
    np.testing.assert_allclose(gi, ri, rtol=1e-12, atol=1e-212)


def test_fixed_point_scale_bounds_the_sum():
    scale, inv = _cuda._fixed_point_scale(3.0, 24)
    assert scale * inv == 1.0
    assert 3.0 * 24 * scale <= 2.0 ** _cuda.FIXED_BITS
    assert 3.0 * 24 * scale > 2.0 ** (_cuda.FIXED_BITS - 1)
    assert _cuda._fixed_point_scale(0.0, 24) == (1.0, 1.0)
    scale, inv = _cuda._fixed_point_scale(1e300, 10 ** 6)  # the sum is beyond float64: no clamp, no wrap
    assert scale * inv == 1.0 and 1e300 * scale * 10 ** 6 <= 2.0 ** _cuda.FIXED_BITS
    assert _cuda._fixed_point_scale(1e-300, 24) == (0.0, 0.0)  # too small for a float64 scale: added in float64


@pytest.mark.parametrize("magnitude", [1e-300, 1e-285, 1e300, 1e302])
def test_backward_at_the_ends_of_float64(rng, magnitude):
    """grad_out near float64's ends: the fixed-point scale was clamped to 2**-938 .. 2**962, so a sum over
    2**1000 wrapped round its int64 (64 x 1e300 gave 2.1e301; 1e302 raised), and one under 2**-900 lost its
    bits (1e-300 gave zeros). Such sums are now scaled to fit, or (the smallest) added in float64."""
    img, grid, go = _inputs(rng, n=1)
    go = go / np.abs(go).max() * magnitude
    gi, gg = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
    ri, rg = ref.grid_sample_backward_spec(img, grid, go, "zeros", False)
    np.testing.assert_allclose(gi, ri, rtol=1e-12, atol=0)
    np.testing.assert_allclose(gg, rg, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator's float64 overflow to inf
def test_backward_sum_that_overflows_float64_is_inf_not_wrapped():
    img = np.zeros((1, 2, 2, 1))
    grid = np.full((1, 8, 8, 2), -0.5)  # every output pixel reads input pixel (0, 0) with weight 1
    go = np.full((1, 8, 8, 1), 1e300)
    gi, _ = _cuda.grid_sample_backward(img, grid, go, 0, False, True)
    assert gi[0, 0, 0, 0] == pytest.approx(6.4e301, rel=1e-12)
    gi, _ = _cuda.grid_sample_backward(img, grid, go * 1e7, 0, False, True)  # the true sum is beyond float64
    assert gi[0, 0, 0, 0] == np.inf
