"""Arguments at the edges of the Python API: each is refused with InvalidArgumentError (or handled), never a
crash, a raw NumPy or Python error, or a silently wrong result."""

import os

import numpy as np
import pytest

import stntool
from stntool.augment import Augmenter
from stntool.errors import InvalidArgumentError, StnError
from stntool.records import Elastic, WarpSpec, apply_spec

I2 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]


@pytest.fixture
def img():
    return np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_empty_theta_and_grid_batches_are_refused(img, backend):
    # the kernels would read entry 0 of an empty grid (a crash for a large one)
    with pytest.raises(InvalidArgumentError, match="grid batch is empty"):
        stntool.grid_sample(img, np.zeros((0, 300, 300, 2)), backend=backend)
    for theta in (np.zeros((0, 2, 3)), np.zeros((0, 3, 3))):
        with pytest.raises(InvalidArgumentError, match="theta batch is empty"):
            stntool.warp(img, theta, backend=backend)
    with pytest.raises(InvalidArgumentError, match="grid batch is empty"):
        stntool.grid_sample_backward(img, np.zeros((0, 4, 4, 2)), np.zeros((0, 4, 4, 3)), backend=backend)


def test_grad_out_must_have_the_sampled_output_shape(img):
    grid = stntool.affine_grid(I2, (4, 4))
    with pytest.raises(InvalidArgumentError, match="grad_out must match"):
        stntool.grid_sample_backward(img, grid, np.zeros((3, 4, 4)))  # CHW, the same size
    gi, gg = stntool.grid_sample_backward(img, grid, np.ones((4, 4, 3)))
    gi1, gg1 = stntool.grid_sample_backward(img, grid, np.ones((1, 4, 4, 3)))
    np.testing.assert_array_equal(gg, gg1)
    grey = img[..., 0]
    _, gg2 = stntool.grid_sample_backward(grey, grid, np.ones((4, 4)))
    assert gg2.shape == (4, 4, 2)


def test_output_sizes_are_whole_numbers_and_not_too_large(img):
    with pytest.raises(InvalidArgumentError, match="too large"):
        stntool.warp(img, I2, out_hw=(10 ** 10, 10 ** 10))
    for bad in ((2.7, 5), "34", (True, 5), (1, 2, 3)):
        with pytest.raises(InvalidArgumentError, match="size must be"):
            stntool.warp(img, I2, out_hw=bad)
    assert stntool.warp(img, I2, out_hw=(2.0, np.int64(5))).shape == (2, 5, 3)


def test_sampling_options_of_the_wrong_type(img):
    with pytest.raises(InvalidArgumentError, match="unknown mode"):
        stntool.warp(img, I2, mode=["bilinear"])
    with pytest.raises(InvalidArgumentError, match="unknown padding"):
        stntool.warp(img, I2, padding=["zeros"])
    # numpy would cast these to numbers (a complex one with only a warning, dropping its imaginary part)
    for bad in ("red", "5", b"1", True, [1 + 2j], np.array([1 + 2j]), np.datetime64("2020-01-01"), [True]):
        with pytest.raises(InvalidArgumentError, match="fill must be"):
            stntool.warp(img, I2, padding="constant", fill=bad)
    from decimal import Decimal
    from fractions import Fraction

    for bad in (10 ** 400, Fraction(10 ** 400, 3), Decimal("sNaN"), Decimal("1e400")):  # OverflowError, ValueError
        with pytest.raises(InvalidArgumentError, match="fill must be finite"):
            stntool.warp(img, I2, padding="constant", fill=bad)

    for good in (7, 7.5, np.uint8(7), [7], np.array([7.0]), (1, 2, 3), Fraction(7), Decimal("7"), [Fraction(1, 2)] * 3):
        stntool.warp(img, I2, padding="constant", fill=good)


def test_one_image_calls_refuse_batches(img):
    batch = np.stack([img, img])
    with pytest.raises(InvalidArgumentError, match=r"\.batch"):
        Augmenter.from_preset("medium")(batch, np.random.default_rng(0))
    with pytest.raises(InvalidArgumentError, match="one image"):
        apply_spec(batch, WarpSpec(theta=((0.9, 0.2, 0.05), (-0.2, 0.9, 0.0))))
    with pytest.raises(InvalidArgumentError, match="one size"):
        Augmenter(rotate=5).batch([img, img[:4]], np.random.default_rng(0))


def test_ranges_and_fields_that_would_overflow_are_refused():
    for kw in (dict(rotate=(-1e308, 1e308)), dict(rotate=float("inf")), dict(translate=float("nan")),
               dict(scale=1e-300), dict(aspect=(1.0, 1e300))):
        with pytest.raises(InvalidArgumentError):
            Augmenter(**kw)
    for alpha, sigma in ((1.0, 1e20), (1.0, 1e-300), (2e6, 5.0), (-1.0, 5.0)):
        with pytest.raises(InvalidArgumentError, match="elastic needs"):
            Elastic(alpha, sigma, 1)
        with pytest.raises(InvalidArgumentError, match="elastic needs"):
            Augmenter(elastic=(alpha, sigma))
    small = np.zeros((16, 16), np.uint8)
    for elastic in ((1.0, 0.01), (1e6, 1e5)):  # the limits themselves warp
        assert Augmenter(elastic=elastic)(small, np.random.default_rng(0)).image.shape == (16, 16)
    assert Augmenter(hflip=np.float32(0.5)).hflip == 0.5
    for rec in ({"theta": [[10 ** 400, 0, 0], [0, 1, 0]]},
                {"tps": {"src": [[10 ** 400, 0], [1, 0], [0, 1]], "dst": [[0, 0], [1, 0], [0, 1]]}}):
        with pytest.raises(InvalidArgumentError, match="not finite"):
            WarpSpec.from_record(rec)


def test_rectify_reads_any_byte_order_and_refuses_what_it_cannot_read():
    from stntool.pages import render_page
    from stntool.rectify import Rectifier

    page = render_page((5, 1), size=(320, 240))
    r = Rectifier("text")
    wide = page.astype(np.uint16) * 257
    t_native, c_native = r.estimate(wide)
    t_swapped, c_swapped = r.estimate(wide.astype(">u2"))
    np.testing.assert_array_equal(t_native, t_swapped)
    assert c_native == c_swapped
    nan_page = page.astype(np.float32) / 255
    nan_page[5, 5] = np.nan
    for bad, message in ((nan_page, "NaN"), (np.zeros((64, 64, 5), np.uint8), "1 to 4 channels"),
                         (np.zeros((64, 64), bool), "uint8, uint16 or float"),
                         (np.zeros((64, 64), np.int64), "uint8, uint16 or float")):
        with pytest.raises(StnError, match=message):
            r.estimate(bad)


def test_yes_no_arguments_refuse_strings_like_align_corners():
    # normalized="False" solved the spline in the normalized frame, input_grad="False" computed the image gradient,
    # Rectifier(refine="False") refined: any non-empty string is true to Python
    from stntool.rectify import MODELS, Rectifier

    img = np.zeros((8, 9), np.float64)
    pts = [[1, 1], [7, 1], [1, 6], [7, 6]]
    th = [[1.0, 0, 0], [0, 1.0, 0]]
    calls = [lambda v: stntool.warp_tps(img, pts, pts, normalized=v, backend="numpy"),
             lambda v: stntool.tps_plan(pts, pts, (8, 9), normalized=v, backend="numpy"),
             lambda v: stntool.warp_backward(img, th, img, input_grad=v, backend="numpy"),
             lambda v: stntool.grid_sample_backward(img, stntool.affine_grid(th, (8, 9)), img, input_grad=v,
                                                    backend="numpy")]
    if os.path.exists(MODELS["text"]):
        calls.append(lambda v: Rectifier(refine=v))
    for call in calls:
        for bad in ("False", "no", None, 2):
            with pytest.raises(InvalidArgumentError, match="must be True or False"):
                call(bad)
        call(np.False_)


def test_a_theta_whose_last_row_is_zero_reads_the_fill_without_warnings():
    import warnings

    img = np.arange(1, 21, dtype=np.float64).reshape(4, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "divide by zero encountered" leaked from the division by m22
        for backend in ("numpy", "cpu"):
            out = stntool.warp(img, [[1, 0, 0], [0, 1, 0], [0, 0, 0]], padding="constant", fill=3.0, backend=backend)
            assert np.array_equal(out, np.full((4, 5), 3.0))


def test_a_plan_whose_coordinates_depend_on_the_input_size_refuses_another_size():
    # a plan of normalized points (or an elastic record's) holds input pixels of the size it was planned for:
    # another size was warped without a word, by a map meant for other pixels
    from stntool.maps import lattice_plan

    src = [[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.6]]
    dst = [[-0.5, -0.4], [0.5, -0.5], [-0.4, 0.5], [0.5, 0.5]]
    norm = stntool.tps_plan(src, dst, (20, 30), normalized=True, backend="numpy")
    pix = stntool.tps_plan(np.array(src) * 10 + 12, np.array(dst) * 10 + 12, (20, 30), backend="numpy")
    assert norm.in_hw == (20, 30) and pix.in_hw is None
    spec = Augmenter(rotate=10, elastic=(20, 5)).sample(np.random.default_rng(0), (20, 30))
    elastic = lattice_plan(spec, (20, 30))
    assert elastic.in_hw == (20, 30)
    for plan in (norm, pix, elastic):
        out = stntool.warp_plan(np.ones((20, 30)), plan, (20, 30), backend="numpy")
        assert out.shape == (20, 30)
    assert stntool.warp_plan(np.ones((25, 30)), pix, (20, 30), backend="numpy").shape == (20, 30)
    for plan in (norm, elastic):
        with pytest.raises(InvalidArgumentError, match="built for an input of 30x20; this image is 30x25"):
            stntool.warp_plan(np.ones((25, 30)), plan, (20, 30), backend="numpy")


def test_a_grid_without_points_is_refused_as_an_output_size_of_zero_is():
    img = np.zeros((4, 5))
    for shape in ((0, 5, 2), (4, 0, 2), (2, 4, 0, 2)):
        with pytest.raises(InvalidArgumentError, match="has no points"):
            stntool.grid_sample(img, np.zeros(shape), backend="numpy")  # an empty image came back


class _TensorThatRequiresGrad:
    """What NumPy meets in a PyTorch tensor that requires grad: ``__array__`` raises RuntimeError."""

    requires_grad = True

    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")


def test_a_tensor_that_requires_grad_is_refused_with_the_way_out():
    # torch's RuntimeError came out of warp, grid_sample and fill: not an stntool error
    t = _TensorThatRequiresGrad()
    th = [[1.0, 0, 0], [0, 1.0, 0]]
    img = np.zeros((4, 5))
    for what, call in (("image", lambda: stntool.warp(t, th, backend="numpy")),
                       ("theta", lambda: stntool.warp(img, t, backend="numpy")),
                       ("grid", lambda: stntool.grid_sample(img, t, backend="numpy")),
                       ("fill", lambda: stntool.warp(img, th, padding="constant", fill=t, backend="numpy"))):
        with pytest.raises(InvalidArgumentError, match=rf"^{what} must be a numeric array \(a tensor that requires "
                                                       r"grad: pass t.detach\(\)\)$"):
            call()
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidArgumentError, match="t.detach()"):
        stntool.warp(torch.zeros(4, 5, requires_grad=True), th, backend="numpy")


class _Bfloat16Tensor:
    """A tensor NumPy cannot read although it needs no grad (bfloat16): ``__array__`` raises TypeError."""

    requires_grad = False

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Got unsupported ScalarType BFloat16")


class _ZeroDimTensor:
    """A 0-d tensor of one number, as NumPy reads it."""

    def __init__(self, v):
        self.v = v

    def __array__(self, dtype=None, copy=None):
        return np.array(self.v, dtype=dtype)


def test_every_entry_point_refuses_a_tensor_that_requires_grad_and_reads_zero_dim_ones():
    # fits, labels and rectify let torch's RuntimeError out; the hint was given for any tensor; T.rotate refused
    # a 0-d tensor (torch.tensor(30.)) that it took before
    from stntool import transforms as T
    from stntool.labels import Labels
    from stntool.rectify import MODELS, Rectifier

    t = _TensorThatRequiresGrad()
    pts = [[0, 0], [10, 0], [0, 10], [10, 10]]
    calls = [lambda: T.fit_affine(t, pts), lambda: T.fit_projective(pts, t), lambda: Labels(keypoints=t),
             lambda: stntool.theta_from_pixel_map(t, (4, 5)), lambda: stntool.ThinPlateSpline(t, pts),
             lambda: T.rotate(t), lambda: T.apply_matrix(np.eye(3), t), lambda: T.invert(t),
             lambda: T.pixel_map_from_theta(t, (4, 5)),
             lambda: stntool.warp_backward(np.zeros((4, 5)), [[1.0, 0, 0], [0, 1.0, 0]], t, backend="numpy"),
             lambda: stntool.tps_grid_backward(np.zeros((4, 5, 2)), t)]
    if os.path.exists(MODELS["text"]):
        calls.append(lambda: Rectifier("text").estimate(t))
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=r"\(a tensor that requires grad: pass t.detach\(\)\)"):
            call()
    with pytest.raises(InvalidArgumentError, match=r"^theta must be a numeric array$"):  # no grad: no such hint
        stntool.warp(np.zeros((4, 5)), _Bfloat16Tensor(), backend="numpy")
    on_another_device = _Bfloat16Tensor()
    on_another_device.requires_grad = True  # unreadable for its device, not its grad: detaching would not help
    with pytest.raises(InvalidArgumentError, match=r"^theta must be a numeric array$"):
        stntool.warp(np.zeros((4, 5)), on_another_device, backend="numpy")
    assert np.array_equal(T.rotate(_ZeroDimTensor(30.0), center=(_ZeroDimTensor(1.0), 2)), T.rotate(30, (1, 2)))
    assert np.array_equal(T.scale(_ZeroDimTensor(2)), T.scale(2))
